"""Call recordings on the call: what the carrier's recording status callback says, and where calltrack plays it.

A ``<Dial record>`` asks the carrier to record the answered call and to report on
``/voice/recording-status``; :func:`call_recording_record` keeps the recording's SID, URL, status and
duration on the call. Playing and deleting need the carrier: ``calltrack.numbers.services.recordings``
(the numbers layer, above this one) streams the audio and applies the retention.
"""

from __future__ import annotations

from django.conf import settings
from django.db import transaction
from django.urls import reverse

from tracking.models import Call, RecordingStatus
from tracking.services.call_events import call_event_record, call_lifecycle_notify

# Twilio's RecordingStatus values we act on (https://www.twilio.com/docs/voice/twiml/dial#recordingstatuscallback).
TWILIO_RECORDING_STATUS = {
    "in-progress": RecordingStatus.IN_PROGRESS, "completed": RecordingStatus.COMPLETED,
    "absent": RecordingStatus.ABSENT, "failed": RecordingStatus.FAILED,
}
RECORDING_FIELDS = ("recording_sid", "recording_url", "recording_status", "recording_duration")


def _applies(current: Call, *, sid: str, status: str) -> bool:
    """Whether a callback changes the call's recording, whatever order the callbacks arrive in.

    A ready recording is final (only retention moves it on, to ``deleted``, which nothing undoes); an
    ``in-progress`` never overwrites an ``absent``/``failed`` of the same recording; a later dial's recording
    replaces a failed or absent earlier one."""
    if current.recording_status in (RecordingStatus.COMPLETED, RecordingStatus.DELETED):
        return False
    if status == RecordingStatus.COMPLETED:
        return True
    if current.recording_status == RecordingStatus.NONE:
        return True
    if current.recording_sid == sid:
        return current.recording_status == RecordingStatus.IN_PROGRESS and status != RecordingStatus.IN_PROGRESS
    return True


def call_recording_record(*, call: Call, recording_sid: str, recording_url: str, status: str, duration: int) -> bool:
    """Keep what a recording status callback says about ``call``'s recording (``status`` in our words,
    RecordingStatus). Idempotent and order-proof (see ``_applies``), decided under a row lock on the call, so
    two callbacks racing cannot both win. Announces ``call.recorded`` (timeline, webhooks) once, when the
    recording becomes ready. Returns whether anything changed."""
    with transaction.atomic():
        current = Call.objects.select_for_update().only("pk", "campaign_id", *RECORDING_FIELDS).get(pk=call.pk)
        if not _applies(current, sid=recording_sid, status=status):
            return False
        current.recording_sid, current.recording_status = recording_sid, status
        if recording_url:
            current.recording_url = recording_url
        current.recording_duration = duration if status == RecordingStatus.COMPLETED else current.recording_duration
        current.save(update_fields=list(RECORDING_FIELDS))
        for name in RECORDING_FIELDS:
            setattr(call, name, getattr(current, name))
        if status == RecordingStatus.COMPLETED:
            call_lifecycle_notify(call=call, event="call.recorded", message=f"recording ready ({duration}s)",
                                  data={"recording_sid": recording_sid, "duration": duration})
        elif status in (RecordingStatus.ABSENT, RecordingStatus.FAILED):
            call_event_record(call=call, kind="call.recording_" + status, message=f"recording {RecordingStatus(status).label.lower()}",
                              data={"recording_sid": recording_sid})
    return True


def call_recording_stream_url(call: Call) -> str:
    """calltrack's absolute URL that plays ``call``'s recording (API token or admin login; what webhooks and
    the API give instead of the carrier's URL), '' without a playable recording."""
    if not call.has_recording:
        return ""
    base = (settings.CALLTRACK_PUBLIC_BASE_URL or "http://localhost:8000").rstrip("/")
    return base + reverse("api:call-recording", args=[call.pk])
