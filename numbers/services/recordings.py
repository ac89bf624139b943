"""Call recordings and voicemails at the carrier: playing recordings through calltrack, and deleting old ones (retention).

Playing goes through calltrack (:func:`call_recording_audio`): the carrier's media needs the account's
credentials, which never reach a browser. :func:`recordings_expire` deletes recordings, and
:func:`voicemails_expire` voicemails (a recording too, kept as ``Call.voicemail_url``), older than
``CALLTRACK_RECORDING_RETENTION_DAYS`` at the carrier and here. What the carrier's callbacks say is kept by
``tracking.services.recordings``.

Which carrier holds a recording is read from its URL: Twilio's are on ``api.twilio.com``; anything else was
made by the simulated ``local`` carrier (``simulate_call``, the demo), whose audio is a file in Django's storage.
A Twilio recording is read and deleted with the credentials of the Twilio account its URL names: the call's
account's subaccount, or the install's (a recording made before the account got a subaccount stays there).
"""

from __future__ import annotations

import logging
import re
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from calltrack.carriers import RECORDING_SID
from calltrack.numbers.providers import Carrier, CarrierError, RecordingAudio, get_carrier
from tracking.models import Call, RecordingStatus
from tracking.services.call_events import call_event_record
from tracking.services.recordings import RECORDING_FIELDS

log = logging.getLogger("calltrack.recordings")


class RecordingUnavailable(Exception):
    """The call has no recording to play (none made, not ready, deleted, or the carrier lost it)."""


def recording_carrier(call: Call) -> Carrier:
    """The carrier holding ``call``'s recording (from its URL, see the module's docstring)."""
    return _carrier_of(call.recording_url, account_id=call.account_id)


_TWILIO_ACCOUNT_IN_URL = re.compile(r"/Accounts/(AC[0-9a-fA-F]{32})/")


def _carrier_of(url: str, *, account_id: int | None) -> Carrier:
    host = (urlsplit(url).hostname or "").lower()
    if host != "api.twilio.com":
        return get_carrier("local")
    carrier = get_carrier("twilio", account_id=account_id)
    named = _TWILIO_ACCOUNT_IN_URL.search(url)
    if named and named.group(1) != getattr(carrier, "account_sid", named.group(1)) and named.group(1) == settings.TWILIO_ACCOUNT_SID:
        return get_carrier("twilio")  # made in the install's account, before the call's account had a subaccount
    return carrier


def voicemail_recording_sid(url: str) -> str:
    """The recording SID in a voicemail's URL (Twilio's ``.../Recordings/RE...``, with or without a media extension;
    the local carrier's the same), or '' when the URL names none."""
    last = urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1]
    sid = last.split(".", 1)[0]
    return sid if RECORDING_SID.match(sid) else ""


def call_recording_audio(*, call: Call) -> RecordingAudio:
    """The audio of ``call``'s recording, read from its carrier. Permission is the caller's business (the
    API view checks it); raises RecordingUnavailable when there is nothing to play."""
    if not call.has_recording:
        raise RecordingUnavailable(f"call {call.pk} has no recording ({call.get_recording_status_display().lower()})")
    try:
        return recording_carrier(call).recording_open(recording_sid=call.recording_sid)
    except CarrierError as exc:
        raise RecordingUnavailable(str(exc)) from exc


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
            call = locked.exclude(recording_status=RecordingStatus.DELETED).only("pk", "account_id", *RECORDING_FIELDS).first()
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


def voicemails_expire(*, now: datetime | None = None, batch: int = 200) -> int:
    """Delete the voicemails of calls started more than CALLTRACK_RECORDING_RETENTION_DAYS ago, at the carrier
    (the recording its URL names) and here (the call loses ``voicemail_url``; its timeline says when and why).
    0 days keeps them forever; the same promises as :func:`recordings_expire` (row locks, safe to run twice, a
    carrier failure leaves the voicemail for the next run, one already gone counts as deleted). A URL that names
    no recording of a carrier we know is only forgotten here. Returns how many were deleted."""
    days = settings.CALLTRACK_RECORDING_RETENTION_DAYS
    if days <= 0:
        return 0
    cutoff = (now or timezone.now()) - timedelta(days=days)
    due = Call.objects.filter(started_at__lt=cutoff).exclude(voicemail_url="")
    deleted = 0
    for call_id in list(due.order_by("started_at").values_list("pk", flat=True)[:batch]):
        with transaction.atomic():
            call = Call.objects.select_for_update(skip_locked=True).filter(pk=call_id).exclude(voicemail_url="").only("pk", "account_id", "voicemail_url").first()
            if call is None:
                continue
            sid = voicemail_recording_sid(call.voicemail_url)
            if sid:
                try:
                    _carrier_of(call.voicemail_url, account_id=call.account_id).recording_delete(recording_sid=sid)
                except CarrierError as exc:
                    log.warning("call %s: cannot delete voicemail %s at the carrier: %s", call.pk, sid, exc)
                    continue
            url = call.voicemail_url
            call.voicemail_url = ""
            call.save(update_fields=["voicemail_url"])
            call_event_record(call=call, kind="call.voicemail_deleted", message=f"voicemail deleted after {days} days (retention)",
                              data={"recording_sid": sid, "url": url})
            deleted += 1
    return deleted
