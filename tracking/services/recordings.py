"""Call recordings: the carrier's recording status callback, playing a recording, and retention.

A ``<Dial record>`` asks the carrier to record the answered call and to report on
``/voice/recording-status``; :func:`call_recording_record` keeps the recording's SID, URL, status and
duration on the call. Playing goes through calltrack (:func:`call_recording_audio`): the carrier's media
needs the account's credentials, which never reach a browser. :func:`recordings_expire` deletes recordings
older than ``CALLTRACK_RECORDING_RETENTION_DAYS`` at the carrier and here.

Which carrier holds a recording is read from its URL: Twilio's are on ``api.twilio.com``; anything else was
made by the simulated ``local`` carrier (``simulate_call``, the demo), whose audio is a file in Django's storage.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from calltrack.numbers.providers import Carrier, CarrierError, RecordingAudio, get_carrier, webhook_urls
from tracking.models import Call, RecordingStatus
from tracking.services.call_events import call_event_record, call_lifecycle_notify

log = logging.getLogger("calltrack.recordings")

# Twilio's RecordingStatus values we act on (https://www.twilio.com/docs/voice/twiml/dial#recordingstatuscallback).
TWILIO_RECORDING_STATUS = {
    "in-progress": RecordingStatus.IN_PROGRESS, "completed": RecordingStatus.COMPLETED,
    "absent": RecordingStatus.ABSENT, "failed": RecordingStatus.FAILED,
}
_FIELDS = ("recording_sid", "recording_url", "recording_status", "recording_duration")


class RecordingUnavailable(Exception):
    """The call has no recording to play (none made, not ready, deleted, or the carrier lost it)."""


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
        current = Call.objects.select_for_update().only("pk", "campaign_id", *_FIELDS).get(pk=call.pk)
        if not _applies(current, sid=recording_sid, status=status):
            return False
        current.recording_sid, current.recording_status = recording_sid, status
        if recording_url:
            current.recording_url = recording_url
        current.recording_duration = duration if status == RecordingStatus.COMPLETED else current.recording_duration
        current.save(update_fields=list(_FIELDS))
        for name in _FIELDS:
            setattr(call, name, getattr(current, name))
        if status == RecordingStatus.COMPLETED:
            call_lifecycle_notify(call=call, event="call.recorded", message=f"recording ready ({duration}s)",
                                  data={"recording_sid": recording_sid, "duration": duration})
        elif status in (RecordingStatus.ABSENT, RecordingStatus.FAILED):
            call_event_record(call=call, kind="call.recording_" + status, message=f"recording {RecordingStatus(status).label.lower()}",
                              data={"recording_sid": recording_sid})
    return True


def recording_carrier(call: Call) -> Carrier:
    """The carrier holding ``call``'s recording (from its URL, see the module's docstring)."""
    host = (urlsplit(call.recording_url).hostname or "").lower()
    return get_carrier("twilio" if host == "api.twilio.com" else "local")


def call_recording_audio(*, call: Call) -> RecordingAudio:
    """The audio of ``call``'s recording, read from its carrier. Permission is the caller's business (the
    API view checks it); raises RecordingUnavailable when there is nothing to play."""
    if not call.has_recording:
        raise RecordingUnavailable(f"call {call.pk} has no recording ({call.get_recording_status_display().lower()})")
    try:
        return recording_carrier(call).recording_open(recording_sid=call.recording_sid)
    except CarrierError as exc:
        raise RecordingUnavailable(str(exc)) from exc


def call_recording_stream_url(call: Call) -> str:
    """calltrack's absolute URL that plays ``call``'s recording (API token or admin login; what webhooks and
    the API give instead of the carrier's URL), '' without a playable recording."""
    if not call.has_recording:
        return ""
    base = webhook_urls()[0].rsplit("/voice/", 1)[0]
    return base + reverse("api:call-recording", args=[call.pk])


def recordings_expire(*, now: datetime | None = None, batch: int = 200) -> int:
    """Delete the recordings of calls started more than CALLTRACK_RECORDING_RETENTION_DAYS ago, at the carrier
    and here (the call keeps its duration, loses SID and URL, and says ``deleted``). 0 days keeps them forever.

    Safe to run twice and at the same time as itself: each call is claimed under a row lock (SKIP LOCKED on
    PostgreSQL) and re-checked. A carrier that fails leaves the recording for the next run; one already gone at
    the carrier counts as deleted. At most ``batch`` recordings a run. Returns how many were deleted."""
    days = settings.CALLTRACK_RECORDING_RETENTION_DAYS
    if days <= 0:
        return 0
    cutoff = (now or timezone.now()) - timedelta(days=days)
    due = Call.objects.filter(started_at__lt=cutoff).exclude(recording_sid="").exclude(recording_status=RecordingStatus.DELETED)
    deleted = 0
    for call_id in list(due.order_by("started_at").values_list("pk", flat=True)[:batch]):
        with transaction.atomic():
            locked = Call.objects.select_for_update(skip_locked=True).filter(pk=call_id).exclude(recording_sid="")
            call = locked.exclude(recording_status=RecordingStatus.DELETED).only("pk", *_FIELDS).first()
            if call is None:
                continue
            try:
                recording_carrier(call).recording_delete(recording_sid=call.recording_sid)
            except CarrierError as exc:
                log.warning("call %s: cannot delete recording %s at the carrier: %s", call.pk, call.recording_sid, exc)
                continue
            sid = call.recording_sid
            call.recording_sid, call.recording_url, call.recording_status = "", "", RecordingStatus.DELETED
            call.save(update_fields=["recording_sid", "recording_url", "recording_status"])
            call_event_record(call=call, kind="call.recording_deleted", message=f"recording deleted after {days} days (retention)",
                              data={"recording_sid": sid})
            deleted += 1
    return deleted
