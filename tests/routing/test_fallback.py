"""/voice/fallback, every Twilio number's voice fallback URL: it dials the fail-safe while the database is down."""

from __future__ import annotations

import pytest
from django.db import OperationalError
from django.db.backends.base.base import BaseDatabaseWrapper
from lxml import etree

from calltrack.numbers.providers import fallback_url
from tests.routing.conftest import sign

TWILIO_FALLBACK = {  # what Twilio posts to a VoiceFallbackUrl: the call's parameters plus the error
    "CallSid": "CA" + "8" * 32, "AccountSid": "AC" + "1" * 32, "From": "+14155550100", "To": "+13035550123",
    "CallStatus": "ringing", "Direction": "inbound", "ErrorCode": "11200", "ErrorUrl": "https://calls.example.com/voice/incoming",
}


@pytest.fixture
def database_down(monkeypatch):
    """Every connection attempt fails like an unreachable server (and pytest-django blocks DB access anyway:
    these tests have no django_db mark)."""
    tries: list[str] = []

    def unreachable(self):
        tries.append(self.alias)
        raise OperationalError("connection to server at 127.0.0.1, port 5432 failed: Connection refused")

    monkeypatch.setattr(BaseDatabaseWrapper, "ensure_connection", unreachable)
    return tries


def _dial(content: bytes) -> etree._Element:
    return etree.fromstring(content).find("Dial")


def test_the_fallback_dials_the_failsafe_signed_into_its_url_with_the_database_down(twilio, database_down, settings, assert_valid_twiml):
    settings.CALLTRACK_PUBLIC_BASE_URL = "http://testserver"
    url = fallback_url("+13035550177")
    assert url == "http://testserver/voice/fallback?failsafe=%2B13035550177"
    response = twilio.post(url, TWILIO_FALLBACK)
    assert response.status_code == 200 and response["Content-Type"] == "text/xml"
    assert_valid_twiml(response.content)
    dial = _dial(response.content)
    assert [n.text for n in dial.findall("Number")] == ["+13035550177"]
    assert dial.get("callerId") == "+14155550100"
    assert database_down == []  # not even tried


def test_without_a_failsafe_in_the_url_it_dials_the_failsafe_setting(twilio, database_down, settings, assert_valid_twiml):
    settings.CALLTRACK_FAILSAFE_NUMBER = "+13035550199"
    response = twilio.post("/voice/fallback", TWILIO_FALLBACK)
    assert_valid_twiml(response.content)
    assert [n.text for n in _dial(response.content).findall("Number")] == ["+13035550199"]


def test_with_no_failsafe_anywhere_the_caller_hears_sorry(twilio, database_down, assert_valid_twiml):
    response = twilio.post("/voice/fallback", TWILIO_FALLBACK)
    assert_valid_twiml(response.content)
    doc = etree.fromstring(response.content)
    assert doc.find("Say") is not None and doc.find("Hangup") is not None


def test_a_number_in_the_url_that_is_not_a_phone_number_is_ignored(twilio, database_down, settings):
    settings.CALLTRACK_FAILSAFE_NUMBER = "+13035550199"
    response = twilio.post("/voice/fallback?failsafe=%00nope", TWILIO_FALLBACK)
    assert [n.text for n in _dial(response.content).findall("Number")] == ["+13035550199"]


def test_the_fallback_refuses_a_request_twilio_did_not_sign(twilio, database_down):
    assert twilio.post("/voice/fallback?failsafe=%2B13035550177", TWILIO_FALLBACK, signature="forged").status_code == 403


def test_a_changed_failsafe_breaks_the_signature(twilio, database_down):
    """The number is covered by X-Twilio-Signature: nobody can point a fallback at a number of their own."""
    signature = sign("http://testserver/voice/fallback?failsafe=%2B13035550177", TWILIO_FALLBACK)
    response = twilio.post("/voice/fallback?failsafe=%2B19005550100", TWILIO_FALLBACK, signature=signature)
    assert response.status_code == 403
