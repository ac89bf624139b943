"""Values Twilio (or anyone holding a signature) may send that no column stores: the call is still recorded."""

from __future__ import annotations

import logging

import pytest

from tests.numbers.factories import TrackingNumberFactory
from tests.routing.conftest import sign
from tests.tracking.factories import CampaignFactory, CampaignHandlerFactory
from tracking.models import Call, CallStatus

pytestmark = pytest.mark.django_db


@pytest.fixture
def number():
    tn = TrackingNumberFactory(campaign=CampaignFactory(failsafe_number="+13035550177"))
    CampaignHandlerFactory(campaign=tn.campaign)
    return tn


def test_nul_bytes_in_the_callers_number_and_city_are_dropped_and_the_call_is_recorded(twilio, number, assert_valid_twiml):
    response = twilio.post(
        "/voice/incoming",
        {"CallSid": "CA-nul", "From": "+1415555\x000100", "To": number.number, "FromCity": "San\x00 Francisco", "CallStatus": "ringing"},
    )
    assert response.status_code == 200
    assert_valid_twiml(response.content)
    call = Call.objects.get(call_sid="CA-nul")
    assert call.caller_number == "+14155550100" and call.caller_city == "San Francisco"
    assert not call.used_failsafe


@pytest.mark.parametrize("duration", ["99999999999999999999999", "²", "-5", "1e9", "9" * 5000])
def test_an_absurd_call_duration_keeps_the_final_status(twilio, number, duration):
    twilio.post("/voice/incoming", {"CallSid": "CA-dur", "From": "+14155550100", "To": number.number, "CallStatus": "ringing"})

    response = twilio.post("/voice/status", {"CallSid": "CA-dur", "CallStatus": "completed", "CallDuration": duration})

    assert response.status_code == 200
    call = Call.objects.get(call_sid="CA-dur")
    assert call.status == CallStatus.COMPLETED and call.ended_at is not None
    assert 0 <= call.duration <= 24 * 3600


def test_an_unsigned_requests_call_sid_is_logged_escaped(client, number, caplog):
    with caplog.at_level(logging.WARNING, logger="calltrack.routing"):
        client.post("/voice/incoming", {"CallSid": "CA1\n2026-01-01 INFO forged line", "From": "+14155550100", "To": number.number})
    (record,) = [r for r in caplog.records if "X-Twilio-Signature" in r.getMessage()]
    assert "\n" not in record.getMessage() and "\\n2026-01-01" in record.getMessage()


def test_a_call_id_in_odd_digits_dials_the_failsafe_instead_of_a_500(twilio, number, assert_valid_twiml):
    url = "http://testserver/voice/dial-status?call=%C2%B2&seq=1"
    params = {"CallSid": "CA-odd", "DialCallStatus": "completed", "DialCallDuration": "5"}
    response = twilio.client.post("/voice/dial-status?call=%C2%B2&seq=1", params, HTTP_X_TWILIO_SIGNATURE=sign(url, params))
    assert response.status_code == 200
    assert_valid_twiml(response.content)
