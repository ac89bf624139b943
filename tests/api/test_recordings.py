"""Playing a call's recording through calltrack: who may, the admin's player, the webhook token, and retention."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.files.storage import default_storage
from django.utils import timezone

from calltrack.numbers.providers import CarrierError
from calltrack.numbers.providers.local import LocalCarrier
from calltrack.numbers.providers.twilio import TwilioCarrier
from calltrack.numbers.services.recordings import recordings_expire, voicemail_recording_sid, voicemails_expire
from calltrack.numbers.tasks import recordings_expire_task
from tests.api.conftest import grant, token_client
from tests.numbers.test_twilio_carrier import API, SID, carrier
from tests.tracking.factories import CallFactory, UserFactory, WebhookFactory
from tracking.models import Call, CallEvent, RecordingStatus
from tracking.services import recordings
from tracking.services.webhooks import webhook_render


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def record(call, seconds: int = 2):
    made = LocalCarrier().recording_create(seconds=seconds)
    recordings.call_recording_record(call=call, recording_sid=made.sid, recording_url=made.url, status="completed", duration=made.duration)
    call.refresh_from_db()
    return call


def url(call) -> str:
    return f"/api/v1/calls/{call.pk}/recording/"


def status(client, call, **headers) -> int:
    """GET the recording and read it to the end, as a player does: the test client then closes the file. (Calling
    ``response.close()`` directly would fire ``request_finished`` inside the test's transaction, which closes the
    PostgreSQL connection.)"""
    response = client.get(url(call), **headers)
    if response.streaming:
        b"".join(response.streaming_content)
    return response.status_code


def staff(*perms: str):
    user = UserFactory(username=f"staff-{'-'.join(p.split('.')[1] for p in perms) or 'none'}", is_staff=True)
    grant(user, *perms) if perms else None
    return token_client(user)


def test_staff_with_the_listen_permission_hear_the_recording(world):
    call = record(world.call_mine)
    response = staff("tracking.view_call", "tracking.listen_recording").get(url(call))
    assert response.status_code == 200 and response["Content-Type"] == "audio/wav"
    assert response["Cache-Control"] == "private, no-store"
    assert b"".join(response.streaming_content)[:4] == b"RIFF"


def test_staff_who_may_view_calls_but_not_listen_are_refused(world):
    call = record(world.call_mine)
    client = staff("tracking.view_call")
    assert status(client, call) == 403
    assert client.get(f"/api/v1/calls/{call.pk}/").status_code == 200


def test_anonymous_users_are_refused(world, client):
    call = record(world.call_mine)
    assert status(client, call) in (401, 403)


def test_collaborators_hear_only_the_calls_they_see(world, source_collaborator, handler_collaborator):
    for call in (world.call_mine, world.call_other, world.call_source_only):
        record(call)
    assert status(source_collaborator, world.call_mine) == 200
    assert status(source_collaborator, world.call_source_only) == 200
    assert status(source_collaborator, world.call_other) == 404
    assert status(handler_collaborator, world.call_mine) == 200
    assert status(handler_collaborator, world.call_source_only) == 404


def test_a_call_without_a_playable_recording_is_a_404_with_the_reason(world):
    client = staff("tracking.view_call", "tracking.listen_recording")
    assert "no recording" in client.get(url(world.call_mine)).json()["detail"].lower()
    call = record(world.call_other)
    default_storage.delete(f"recordings/{call.recording_sid}.wav")  # the carrier lost it
    assert status(client, call) == 404


def test_any_accept_header_gets_the_audio(world):
    call = record(world.call_mine)
    client = staff("tracking.view_call", "tracking.listen_recording")
    assert status(client, call, HTTP_ACCEPT="audio/mpeg") == 200


def test_the_api_lists_the_recording_fields_and_calltracks_own_url(world):
    call = record(world.call_mine, seconds=3)
    data = staff("tracking.view_call").get(f"/api/v1/calls/{call.pk}/").json()
    assert data["recording_url"] == f"http://testserver{url(call)}"
    assert (data["recording_sid"], data["recording_status"], data["recording_duration"]) == (call.recording_sid, "completed", 3)
    assert "local.calltrack.invalid" not in str(data)


def test_the_recording_url_webhook_token_is_calltracks_player_url(world, settings):
    settings.CALLTRACK_PUBLIC_BASE_URL = "https://calls.example.com"
    hook = WebhookFactory(campaign=world.campaign, url="https://crm.example.com/hook?rec=[recording_url]", method="GET")
    assert webhook_render(webhook=hook, call=world.call_mine, event="call.completed").url == "https://crm.example.com/hook?rec="
    call = record(world.call_mine)
    rendered = webhook_render(webhook=hook, call=call, event="call.recorded").url
    assert rendered == f"https://crm.example.com/hook?rec=https%3A%2F%2Fcalls.example.com%2Fapi%2Fv1%2Fcalls%2F{call.pk}%2Frecording%2F"


# --- the admin's player ----------------------------------------------------------------------------------------


def test_the_call_admin_page_shows_a_player_streaming_through_calltrack(world, client):
    call = record(world.call_mine)
    client.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))
    page = client.get(f"/admin/tracking/call/{call.pk}/change/").content.decode()
    assert f'<audio controls preload="none" src="{url(call)}"' in page
    assert status(client, call) == 200  # the admin's session plays it


def test_staff_without_the_listen_permission_see_no_player_nor_the_carrier_url(world, client):
    call = record(world.call_mine)
    user = UserFactory(username="viewer", is_staff=True)
    grant(user, "tracking.view_call")
    client.force_login(user)
    page = client.get(f"/admin/tracking/call/{call.pk}/change/").content.decode()
    assert "<audio" not in page and call.recording_sid not in page


# --- retention ---------------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_retention_deletes_old_recordings_at_the_carrier_and_here(settings):
    settings.CALLTRACK_RECORDING_RETENTION_DAYS = 30
    old = record(CallFactory(started_at=timezone.now() - timedelta(days=31)))
    recent = record(CallFactory(started_at=timezone.now() - timedelta(days=29)))
    old_file = f"recordings/{old.recording_sid}.wav"
    assert recordings_expire() == 1
    old.refresh_from_db()
    assert (old.recording_status, old.recording_sid, old.recording_url, old.recording_duration) == (RecordingStatus.DELETED, "", "", 2)
    assert not default_storage.exists(old_file)
    assert CallEvent.objects.filter(call=old, kind="call.recording_deleted").exists()
    recent.refresh_from_db()
    assert recent.has_recording and default_storage.exists(f"recordings/{recent.recording_sid}.wav")
    assert recordings_expire() == 0  # safe to run twice
    # A late callback cannot bring a deleted recording back.
    recordings.call_recording_record(call=old, recording_sid="RE" + "5" * 32, recording_url="", status="completed", duration=9)
    old.refresh_from_db()
    assert old.recording_status == RecordingStatus.DELETED


@pytest.mark.django_db
def test_retention_zero_keeps_recordings_forever(settings):
    settings.CALLTRACK_RECORDING_RETENTION_DAYS = 0
    old = record(CallFactory(started_at=timezone.now() - timedelta(days=3000)))
    assert recordings_expire() == 0
    old.refresh_from_db()
    assert old.has_recording


@pytest.mark.django_db
def test_a_carrier_that_fails_to_delete_leaves_the_recording_for_the_next_run(settings, monkeypatch):
    settings.CALLTRACK_RECORDING_RETENTION_DAYS = 1
    old = record(CallFactory(started_at=timezone.now() - timedelta(days=2)))

    def refuse(self, *, recording_sid):
        raise CarrierError("Twilio is rate limiting us", code="rate_limited")

    monkeypatch.setattr(LocalCarrier, "recording_delete", refuse)
    assert recordings_expire() == 0
    old.refresh_from_db()
    assert old.has_recording


def voicemail(call, seconds: int = 9):
    """A voicemail as /voice/voicemail keeps it: the carrier's recording URL (here the local carrier's WAV)."""
    made = LocalCarrier().recording_create(seconds=seconds)
    Call.objects.filter(pk=call.pk).update(voicemail_url=made.url)
    call.refresh_from_db()
    return call, f"recordings/{made.sid}.wav"


@pytest.mark.django_db
def test_retention_deletes_old_voicemails_at_the_local_carrier_and_here(settings):
    settings.CALLTRACK_RECORDING_RETENTION_DAYS = 30
    old, old_file = voicemail(CallFactory(started_at=timezone.now() - timedelta(days=31)))
    recent, recent_file = voicemail(CallFactory(started_at=timezone.now() - timedelta(days=29)))
    assert default_storage.exists(old_file)

    assert recordings_expire_task() == "0 recordings and 1 voicemails deleted"

    old.refresh_from_db()
    assert old.voicemail_url == "" and not default_storage.exists(old_file)
    event = CallEvent.objects.get(call=old, kind="call.voicemail_deleted")
    assert event.message == "voicemail deleted after 30 days (retention)" and event.data["recording_sid"] in old_file
    recent.refresh_from_db()
    assert recent.voicemail_url and default_storage.exists(recent_file)
    assert voicemails_expire() == 0  # safe to run twice


@pytest.mark.django_db
def test_retention_zero_keeps_voicemails_forever(settings):
    settings.CALLTRACK_RECORDING_RETENTION_DAYS = 0
    old, old_file = voicemail(CallFactory(started_at=timezone.now() - timedelta(days=3000)))
    assert voicemails_expire() == 0
    old.refresh_from_db()
    assert old.voicemail_url and default_storage.exists(old_file)


@pytest.mark.django_db
def test_retention_deletes_old_voicemails_at_twilio_through_the_recordings_resource(settings, monkeypatch):
    settings.CALLTRACK_RECORDING_RETENTION_DAYS = 7
    sids = ["RE" + "1" * 32, "RE" + "2" * 32, "RE" + "3" * 32]
    calls = [
        CallFactory(started_at=timezone.now() - timedelta(days=8 + i), voicemail_url=f"{API}/Recordings/{sid}")
        for i, sid in enumerate(sids)
    ]
    twilio, fake = carrier(
        (204, ""),  # deleted
        (404, {"code": 20404, "message": "The requested resource was not found", "status": 404}),  # already gone: done
        (429, {"code": 20429, "message": "Too Many Requests", "status": 429}),  # refused: kept for the next run
    )
    monkeypatch.setattr(TwilioCarrier, "from_settings", classmethod(lambda cls, **kwargs: twilio))

    assert voicemails_expire() == 2

    # Oldest first: the third call, then the second, then the first.
    assert [(r["method"], r["uri"]) for r in fake.requests] == [("DELETE", f"{API}/Recordings/{sid}.json") for sid in reversed(sids)]
    assert fake.requests[0]["auth"] == (SID, "secret")
    assert [Call.objects.get(pk=c.pk).voicemail_url for c in calls] == [f"{API}/Recordings/{sids[0]}", "", ""]


@pytest.mark.parametrize(
    "url, sid",
    [
        (f"https://api.twilio.com/2010-04-01/Accounts/AC{'a' * 32}/Recordings/RE{'b' * 32}", "RE" + "b" * 32),
        (f"https://api.twilio.com/2010-04-01/Accounts/AC{'a' * 32}/Recordings/RE{'b' * 32}.mp3", "RE" + "b" * 32),
        (f"https://local.calltrack.invalid/Recordings/RE{'c' * 32}", "RE" + "c" * 32),
        ("https://voicemail.example.com/messages/42.wav", ""),
        ("https://api.twilio.com/2010-04-01/Accounts/AC1/Calls/../Recordings/not-a-sid", ""),
    ],
)
def test_a_voicemails_recording_sid_is_read_from_its_url(url, sid):
    assert voicemail_recording_sid(url) == sid


@pytest.mark.django_db
def test_a_voicemail_url_naming_no_recording_is_forgotten_here_without_asking_a_carrier(settings, monkeypatch):
    settings.CALLTRACK_RECORDING_RETENTION_DAYS = 1
    call = CallFactory(started_at=timezone.now() - timedelta(days=2), voicemail_url="https://voicemail.example.com/messages/42.wav")

    def refuse(self, *, recording_sid):
        raise AssertionError("no carrier holds this voicemail")

    monkeypatch.setattr(LocalCarrier, "recording_delete", refuse)
    assert voicemails_expire() == 1
    call.refresh_from_db()
    assert call.voicemail_url == ""


def test_the_retention_task_is_scheduled_daily():
    from calltrack.schedules import SCHEDULES

    assert ("calltrack: delete expired call recordings", "calltrack.numbers.tasks.recordings_expire_task", "D", None) in SCHEDULES
