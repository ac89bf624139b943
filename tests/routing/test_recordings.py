"""Call recordings through the voice webhooks: the recorded <Dial>, Twilio's recording status callback, simulate_call."""

from __future__ import annotations

import io
import wave
from io import StringIO

import pytest
from django.core.management import call_command
from lxml import etree

from tests.numbers.factories import TrackingNumberFactory
from tests.tracking.factories import CampaignFactory, CampaignHandlerFactory, HandlerFactory, UserFactory
from tracking.models import Call, CallEvent, RecordingStatus

pytestmark = pytest.mark.django_db

ACCOUNT = "AC" + "1" * 32
CALL_SID = "CA" + "2" * 32
RECORDING_SID = "RE" + "3" * 32
RECORDING_URL = f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT}/Recordings/{RECORDING_SID}"


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def recorded_number():
    campaign = CampaignFactory(name="Recorded", record_calls=True)
    CampaignHandlerFactory(campaign=campaign, handler=HandlerFactory(name="Desk"))
    return TrackingNumberFactory(campaign=campaign)


def _dial(twilio, tn) -> etree._Element:
    response = twilio.post("/voice/incoming", {"CallSid": CALL_SID, "AccountSid": ACCOUNT, "From": "+14155550100", "To": tn.number,
                                               "CallStatus": "ringing", "Direction": "inbound"})
    assert response.status_code == 200
    return etree.fromstring(response.content).find("Dial")


def _callback_params(**overrides: str) -> dict[str, str]:
    """Exactly the parameters Twilio posts to a <Dial recordingStatusCallback> (Twilio's docs, "recordingStatusCallback")."""
    params = {
        "AccountSid": ACCOUNT, "CallSid": CALL_SID, "RecordingSid": RECORDING_SID, "RecordingUrl": RECORDING_URL,
        "RecordingStatus": "completed", "RecordingDuration": "37", "RecordingChannels": "2",
        "RecordingStartTime": "Mon, 30 Nov 2026 12:00:05 +0000", "RecordingSource": "DialVerb", "RecordingTrack": "both",
        "ErrorCode": "0",
    }
    params.update(overrides)
    return params


def test_a_recorded_dial_asks_for_the_recording_status_callback_in_valid_twiml(twilio, recorded_number, assert_valid_twiml):
    response = twilio.post("/voice/incoming", {"CallSid": CALL_SID, "From": "+14155550100", "To": recorded_number.number})
    assert_valid_twiml(response.content)
    dial = etree.fromstring(response.content).find("Dial")
    call = Call.objects.get()
    assert dial.get("record") == "record-from-answer-dual"
    assert dial.get("recordingStatusCallback") == f"http://testserver/voice/recording-status?call={call.pk}"
    assert dial.get("recordingStatusCallbackMethod") == "POST"
    assert dial.get("recordingStatusCallbackEvent") == "in-progress completed absent"


def test_a_campaign_that_does_not_record_asks_for_no_recording(twilio):
    campaign = CampaignFactory(record_calls=False)
    CampaignHandlerFactory(campaign=campaign)
    dial = _dial(twilio, TrackingNumberFactory(campaign=campaign))
    assert dial.get("record") is None and dial.get("recordingStatusCallback") is None


def test_twilios_recording_callback_keeps_the_sid_url_and_duration_on_the_call(twilio, recorded_number, assert_valid_twiml):
    callback = _dial(twilio, recorded_number).get("recordingStatusCallback")
    response = twilio.post(callback, _callback_params())
    assert response.status_code == 200
    assert_valid_twiml(response.content)
    call = Call.objects.get()
    assert (call.recording_sid, call.recording_url, call.recording_duration, call.recording_status) == (
        RECORDING_SID, RECORDING_URL, 37, RecordingStatus.COMPLETED)
    assert call.has_recording
    assert CallEvent.objects.filter(call=call, kind="call.recorded").count() == 1


def test_a_retried_or_late_recording_callback_changes_nothing(twilio, recorded_number):
    callback = _dial(twilio, recorded_number).get("recordingStatusCallback")
    twilio.post(callback, _callback_params())
    # Twilio retries the same callback, and the in-progress one arrives last.
    twilio.post(callback, _callback_params())
    twilio.post(callback, _callback_params(RecordingStatus="in-progress", RecordingDuration="-1"))
    twilio.post(callback, _callback_params(RecordingStatus="absent", RecordingSid="RE" + "4" * 32, RecordingDuration="0"))
    call = Call.objects.get()
    assert (call.recording_sid, call.recording_status, call.recording_duration) == (RECORDING_SID, RecordingStatus.COMPLETED, 37)
    assert CallEvent.objects.filter(call=call, kind="call.recorded").count() == 1


def test_in_progress_then_completed_in_order_ends_ready(twilio, recorded_number):
    callback = _dial(twilio, recorded_number).get("recordingStatusCallback")
    twilio.post(callback, _callback_params(RecordingStatus="in-progress", RecordingDuration="-1"))
    assert Call.objects.get().recording_status == RecordingStatus.IN_PROGRESS
    twilio.post(callback, _callback_params())
    assert Call.objects.get().recording_status == RecordingStatus.COMPLETED


def test_an_unsigned_recording_callback_is_refused_and_changes_nothing(twilio, recorded_number):
    callback = _dial(twilio, recorded_number).get("recordingStatusCallback")
    response = twilio.post(callback, _callback_params(), signature="bad")
    assert response.status_code == 403
    assert Call.objects.get().recording_sid == ""


@pytest.mark.parametrize("overrides", [
    {"RecordingSid": "RE\x00bad"},
    {"RecordingSid": "RE" + "a" * 70},
    {"RecordingStatus": "done"},
    {"RecordingUrl": "javascript:alert(1)"},
    {"CallSid": "CA" + "9" * 32},
])
def test_a_bad_recording_callback_gets_an_empty_answer_and_changes_nothing(twilio, recorded_number, overrides, assert_valid_twiml):
    callback = _dial(twilio, recorded_number).get("recordingStatusCallback")
    response = twilio.post(callback, _callback_params(**overrides))
    assert response.status_code == 200
    assert_valid_twiml(response.content)
    assert Call.objects.get().recording_status == RecordingStatus.NONE


def test_a_huge_duration_is_capped_not_a_500(twilio, recorded_number):
    callback = _dial(twilio, recorded_number).get("recordingStatusCallback")
    assert twilio.post(callback, _callback_params(RecordingDuration="9" * 30)).status_code == 200
    assert Call.objects.get().recording_duration == 0


def test_simulate_call_produces_a_recording_the_api_plays(client, recorded_number):
    out = StringIO()
    call_command("simulate_call", "--to", recorded_number.number, "--from", "+14155550100", "--duration", "3", stdout=out)
    call = Call.objects.get()
    assert call.has_recording and call.recording_duration == 3
    assert call.recording_url.startswith("https://local.calltrack.invalid/Recordings/RE")
    assert f"recording: {call.recording_sid} (3s)" in out.getvalue()
    client.force_login(UserFactory(username="boss", is_staff=True, is_superuser=True))
    response = client.get(f"/api/v1/calls/{call.pk}/recording/", HTTP_ACCEPT="audio/*")
    assert response.status_code == 200 and response["Content-Type"] == "audio/wav"
    body = b"".join(response.streaming_content)
    assert int(response["Content-Length"]) == len(body)
    with wave.open(io.BytesIO(body)) as wav:
        assert wav.getnframes() / wav.getframerate() == 3
    assert client.get(f"/api/v1/calls/{call.pk}/").json()["recording_url"] == f"http://testserver/api/v1/calls/{call.pk}/recording/"
