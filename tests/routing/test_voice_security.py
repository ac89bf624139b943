"""Signatures, proxies and the never-a-500 rule of the voice webhooks."""

from __future__ import annotations

import logging

import pytest
from django.core.checks import run_checks
from django.db import DatabaseError
from lxml import etree

from calltrack.numbers.models import TrackingNumber
from tests.numbers.factories import TrackingNumberFactory
from tests.routing.conftest import sign
from tests.tracking.factories import CampaignFactory, CampaignHandlerFactory
from tracking.models import Call, CallAttempt

pytestmark = pytest.mark.django_db
PARAMS = {"CallSid": "CA1", "From": "+14155550100", "CallStatus": "ringing"}


@pytest.fixture
def number():
    tn = TrackingNumberFactory(campaign=CampaignFactory(failsafe_number="+13035550177"))
    CampaignHandlerFactory(campaign=tn.campaign)
    return tn


def test_missing_signature_is_refused_and_touches_nothing(client, number):
    response = client.post("/voice/incoming", {**PARAMS, "To": number.number})
    assert response.status_code == 403
    assert not Call.objects.exists()


def test_wrong_signature_is_refused(twilio, number):
    response = twilio.post("/voice/incoming", {**PARAMS, "To": number.number}, signature="bm90IGl0")
    assert response.status_code == 403
    assert not Call.objects.exists()


def test_signature_over_other_params_is_refused(client, number):
    params = {**PARAMS, "To": number.number}
    signature = sign("http://testserver/voice/incoming", {**params, "From": "+14155550111"})
    assert client.post("/voice/incoming", params, HTTP_X_TWILIO_SIGNATURE=signature).status_code == 403


@pytest.mark.parametrize("path", ["/voice/status", "/voice/gather?call=1&round=1", "/voice/dial-status?call=1&seq=1",
                                  "/voice/whisper?attempt=1", "/voice/attempt-status?attempt=1", "/voice/voicemail?call=1",
                                  "/voice/queue-bridge?attempt=1"])
def test_every_voice_url_checks_the_signature(client, path):
    assert client.post(path, PARAMS).status_code == 403


def test_public_base_url_is_what_twilio_signed(client, settings, number):
    settings.CALLTRACK_PUBLIC_BASE_URL = "https://calls.example.com/"
    settings.ALLOWED_HOSTS = ["internal"]
    params = {**PARAMS, "To": number.number}
    signature = sign("https://calls.example.com/voice/incoming", params)
    response = client.post("/voice/incoming", params, HTTP_X_TWILIO_SIGNATURE=signature, HTTP_HOST="internal")
    assert response.status_code == 200
    assert b"https://calls.example.com/voice/dial-status?" in response.content


def test_forwarded_proto_and_host_behind_a_proxy(client, settings, number):
    settings.ALLOWED_HOSTS = ["calls.example.org"]
    settings.USE_X_FORWARDED_HOST = True
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    params = {**PARAMS, "To": number.number}
    signature = sign("https://calls.example.org/voice/incoming?x=a%20b&y=1", params)
    response = client.post(
        "/voice/incoming?x=a%20b&y=1", params, HTTP_X_TWILIO_SIGNATURE=signature, HTTP_HOST="10.0.0.5:8000",
        HTTP_X_FORWARDED_PROTO="https", HTTP_X_FORWARDED_HOST="calls.example.org",
    )
    assert response.status_code == 200


def test_query_string_is_kept_exactly_as_sent(client, number):
    params = {**PARAMS, "To": number.number}
    # Twilio signed the query string in this exact encoding; a re-encoded one would not match.
    signature = sign("http://testserver/voice/incoming?a=1&b=x%2Fy", params)
    assert client.post("/voice/incoming?a=1&b=x%2Fy", params, HTTP_X_TWILIO_SIGNATURE=signature).status_code == 200
    other = sign("http://testserver/voice/incoming?a=1&b=x/y", params)
    assert client.post("/voice/incoming?a=1&b=x%2Fy", params, HTTP_X_TWILIO_SIGNATURE=other).status_code == 403


def test_signature_check_can_be_switched_off_explicitly(client, settings, number):
    settings.CALLTRACK_VALIDATE_TWILIO_SIGNATURE = False
    assert client.post("/voice/incoming", {**PARAMS, "To": number.number}).status_code == 200


def test_switching_the_check_off_is_refused_without_debug(settings):
    settings.DEBUG = False
    settings.CALLTRACK_VALIDATE_TWILIO_SIGNATURE = False
    # A deploy check (`check --deploy`); the WSGI application and qcluster refuse to start on it (test_production_start).
    assert "calltrack.E003" in {m.id for m in run_checks(include_deployment_checks=True)}


def failsafe_target(response):
    assert response.status_code == 200
    assert response["Content-Type"] == "text/xml"
    root = etree.fromstring(response.content)
    number = root.find("Dial/Number")
    return number.text if number is not None else None


def test_unknown_to_dials_the_configured_failsafe(twilio, settings, assert_valid_twiml):
    settings.CALLTRACK_FAILSAFE_NUMBER = "+13035550100"
    response = twilio.post("/voice/incoming", {**PARAMS, "To": "+14155559999"})
    assert_valid_twiml(response.content)
    assert failsafe_target(response) == "+13035550100"


def test_with_no_failsafe_anywhere_the_caller_hears_a_message_and_hang_up(twilio, assert_valid_twiml):
    response = twilio.post("/voice/incoming", {**PARAMS, "To": "+14155559999"})
    assert_valid_twiml(response.content)
    root = etree.fromstring(response.content)
    assert [el.tag for el in root] == ["Say", "Hangup"]


@pytest.mark.parametrize("missing", ["CallSid", "To", "From"])
def test_missing_parameter_dials_the_failsafe(twilio, settings, number, missing):
    settings.CALLTRACK_FAILSAFE_NUMBER = "+13035550100"
    params = {k: v for k, v in {**PARAMS, "To": number.number}.items() if k != missing}
    expected = "+13035550100" if missing == "To" else "+13035550177"
    assert failsafe_target(twilio.post("/voice/incoming", params)) == expected


def test_malformed_to_dials_the_failsafe(twilio, settings):
    settings.CALLTRACK_FAILSAFE_NUMBER = "+13035550100"
    assert failsafe_target(twilio.post("/voice/incoming", {**PARAMS, "To": "not-a-number"})) == "+13035550100"


def test_tracking_number_failsafe_wins_over_the_campaigns(twilio, number, monkeypatch):
    number.failsafe_number = "+13035550166"
    number.save()
    monkeypatch.setattr("routing.services.config._campaign_options_load", lambda campaign: 1 / 0)
    assert failsafe_target(twilio.post("/voice/incoming", {**PARAMS, "To": number.number})) == "+13035550166"


def test_an_exception_while_routing_dials_the_campaign_failsafe_and_is_logged_with_the_callsid(twilio, number, monkeypatch, caplog):
    monkeypatch.setattr("routing.services.config._campaign_options_load", lambda campaign: 1 / 0)
    with caplog.at_level(logging.ERROR, logger="calltrack.routing"):
        response = twilio.post("/voice/incoming", {**PARAMS, "To": number.number})
    assert failsafe_target(response) == "+13035550177"
    assert any("CA1" in r.getMessage() for r in caplog.records)
    call = Call.objects.get()
    assert call.used_failsafe
    assert CallAttempt.objects.get().kind == "failsafe"


def test_a_database_error_dials_the_failsafe(twilio, settings, number, monkeypatch):
    settings.CALLTRACK_FAILSAFE_NUMBER = "+13035550100"

    def broken(*args, **kwargs):
        raise DatabaseError("connection lost")

    monkeypatch.setattr("routing.services.tracking_number_for", broken)
    monkeypatch.setattr(TrackingNumber.objects, "select_related", broken)
    monkeypatch.setattr(TrackingNumber.objects, "routable", broken)
    assert failsafe_target(twilio.post("/voice/incoming", {**PARAMS, "To": number.number})) == "+13035550100"


def test_disabled_campaign_sends_calls_to_the_failsafe(twilio, number):
    number.campaign.enabled = False
    number.campaign.save()
    assert failsafe_target(twilio.post("/voice/incoming", {**PARAMS, "To": number.number})) == "+13035550177"
    assert Call.objects.get().used_failsafe


@pytest.mark.parametrize("path", ["/voice/dial-status?call=999&seq=1", "/voice/gather?call=999&round=1",
                                  "/voice/dial-status?call=abc&seq=1", "/voice/voicemail?call=999"])
def test_callbacks_for_an_unknown_call_dial_the_failsafe(twilio, settings, path):
    settings.CALLTRACK_FAILSAFE_NUMBER = "+13035550100"
    assert failsafe_target(twilio.post(path, {**PARAMS, "To": "+14155559999"})) == "+13035550100"


@pytest.mark.parametrize("path", ["/voice/status", "/voice/whisper?attempt=999", "/voice/attempt-status?attempt=x"])
def test_notifications_that_fail_answer_an_empty_response(twilio, path, assert_valid_twiml):
    response = twilio.post(path, {**PARAMS, "CallStatus": "bogus"})
    assert response.status_code == 200
    assert_valid_twiml(response.content)
    assert len(etree.fromstring(response.content)) == 0


def test_a_failure_after_the_slot_was_taken_leaves_no_slot_behind(twilio, number, monkeypatch):
    monkeypatch.setattr("routing.services.turn.Turn.notify", lambda *a, **kw: (_ for _ in ()).throw(RuntimeError("boom")))
    response = twilio.post("/voice/incoming", {**PARAMS, "To": number.number})
    assert failsafe_target(response) == "+13035550177"
    assert not CallAttempt.objects.filter(holds_slot=True).exists()
    assert list(CallAttempt.objects.values_list("kind", flat=True)) == ["failsafe"]
    assert Call.objects.get().used_failsafe


def test_forwarded_host_and_proto_are_ignored_unless_configured(client, settings, number):
    """A request Twilio signed for another host of the account (staging, a vendor) replayed with X-Forwarded-Host."""
    settings.ALLOWED_HOSTS = ["calls.example.com"]
    params = {**PARAMS, "To": number.number}
    signature = sign("https://staging.example.com/voice/incoming", params)
    response = client.post(
        "/voice/incoming", params, HTTP_X_TWILIO_SIGNATURE=signature, HTTP_HOST="calls.example.com",
        HTTP_X_FORWARDED_PROTO="https", HTTP_X_FORWARDED_HOST="staging.example.com",
    )
    assert response.status_code == 403
    assert not Call.objects.exists()


def test_a_forwarded_host_outside_allowed_hosts_is_refused(client, settings, number):
    settings.ALLOWED_HOSTS = ["calls.example.com"]
    settings.USE_X_FORWARDED_HOST = True
    params = {**PARAMS, "To": number.number}
    signature = sign("http://staging.example.com/voice/incoming", params)
    response = client.post(
        "/voice/incoming", params, HTTP_X_TWILIO_SIGNATURE=signature, HTTP_HOST="calls.example.com",
        HTTP_X_FORWARDED_HOST="staging.example.com",
    )
    assert response.status_code == 400
    assert not Call.objects.exists()


def test_two_proxies_use_the_entry_the_outermost_proxy_wrote(client, settings, number):
    settings.ALLOWED_HOSTS = ["calls.example.com"]
    settings.USE_X_FORWARDED_HOST = True
    params = {**PARAMS, "To": number.number}
    forwarded = "staging.example.com, calls.example.com, internal-lb"  # the client's, the outer proxy's, the inner one's
    signature = sign("http://calls.example.com/voice/incoming", params)
    refused = client.post("/voice/incoming", params, HTTP_X_TWILIO_SIGNATURE=signature, HTTP_X_FORWARDED_HOST=forwarded)
    assert refused.status_code == 400  # a list, and nothing says how many proxies are ours

    settings.CALLTRACK_PROXY_HOPS = 2
    response = client.post("/voice/incoming", params, HTTP_X_TWILIO_SIGNATURE=signature, HTTP_X_FORWARDED_HOST=forwarded)
    assert response.status_code == 200
    staging = sign("http://staging.example.com/voice/incoming", params)
    assert client.post("/voice/incoming", params, HTTP_X_TWILIO_SIGNATURE=staging, HTTP_X_FORWARDED_HOST=forwarded).status_code == 403
