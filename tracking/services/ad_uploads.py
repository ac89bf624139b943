"""Sending converting calls back to the ad platforms: queueing uploads, delivering them, adjusting them.

Flow: a call's ``call.completed`` or ``call.converted`` event (voice status callback, postback, admin, API) asks
``conversion_uploads_after_commit``; when the call's campaign has destinations (voice routing knows it without a
statement from the campaign's cached configuration, ``routing.services.config.CampaignConfig.sends_conversions``),
``conversion_uploads_queue`` runs after the commit: one ``ConversionUpload`` per triggered destination (unique per call and destination), decided at once when the call is
not eligible (no click id, outside the window, no consent), else pending and queued to a django-q2 worker
(``tracking.tasks.conversion_upload_deliver``) or, with a delay, left for the every-minute sweep
(``tracking.tasks.conversion_uploads_due_task``). A campaign without destinations costs the voice path nothing.

Delivery (``conversion_upload_attempt``) holds the upload's row lock (``SELECT ... FOR UPDATE SKIP LOCKED``) while
it sends: a second worker at the same moment skips it, and one that comes after finds it sent. Failures the
platform may get over (timeouts, 408, 429, 5xx) are tried again with exponential backoff; other answers refuse.
"""

from __future__ import annotations

import functools
import json
import logging
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django_q.tasks import async_task

from calltrack import outbound
from tracking.models import Adjustment, Call, ConversionDestination, ConversionUpload, UploadStatus
from tracking.services import ad_platforms as platforms

logger = logging.getLogger(__name__)

DELIVER_TASK = "tracking.tasks.conversion_upload_deliver"
UPLOAD_EVENTS = frozenset({"call.completed", "call.converted"})
MAX_BACKOFF = timedelta(hours=6)
TOKEN_URLS = {"google": "google_token", "microsoft": "microsoft_token"}


# --- After a call's event -----------------------------------------------------------------------------------------


def conversion_uploads_after_commit(*, call: Call, event: str, sends: bool | None = None) -> None:
    """Queue the call's uploads once the surrounding transaction commits, if ``event`` may trigger one and the campaign
    has destinations. ``sends``: whether it has, when the caller knows (voice routing keeps it with the campaign's cached
    configuration, so a campaign without destinations costs the voice path no statement); None: asked after the commit.
    A failure after the commit is logged, never raised."""
    if event not in UPLOAD_EVENTS or call.campaign_id is None or call.is_test or sends is False:
        return
    transaction.on_commit(functools.partial(_queue_after_commit, call.pk), robust=True)


def _queue_after_commit(call_id: int) -> None:
    conversion_uploads_queue(call_id=call_id)


# --- Plain data ------------------------------------------------------------------------------------------------------


def destination_data(destination: ConversionDestination) -> platforms.Destination:
    return platforms.Destination(
        id=destination.pk, kind=destination.kind, trigger=destination.trigger, min_talk_time=destination.min_talk_time,
        value_from=destination.value_from, fixed_value=destination.fixed_value, currency=destination.currency,
        consent_required=destination.consent_required, hashed_phone_allowed=destination.hashed_phone_allowed,
        account_id=destination.account_id, conversion_action=destination.conversion_action,
        account_timezone=destination.account_timezone or "UTC",
        credentials={str(k): str(v) for k, v in (destination.credentials or {}).items()},
    )


def upload_call_data(call: Call) -> platforms.UploadCall:
    marketing = call.marketing_data if isinstance(call.marketing_data, dict) else {}
    session = call.session if call.session_id else None
    return platforms.UploadCall(
        id=call.pk, caller_number=call.caller_number, started_at=call.started_at,
        conversion_at=call.converted_at or call.ended_at or call.started_at,
        click_at=session.started_at if session is not None else call.started_at,
        marketing={str(k): str(v) for k, v in marketing.items() if v is not None},
        answered=call.answered_at is not None or call.talk_time > 0, talk_time=call.talk_time,
        revenue_converted=call.revenue_converted, payout_converted=call.payout_converted,
        revenue=call.revenue, payout=call.payout,
        google_call=call.source is not None and call.source.google_call_asset,
    )


def _base_urls() -> dict[str, str]:
    return dict(settings.CALLTRACK_AD_PLATFORM_URLS)


# --- Queueing --------------------------------------------------------------------------------------------------------


def _queue(upload_id: int) -> None:
    async_task(DELIVER_TASK, upload_id, task_name=f"conversion-upload-{upload_id}")


def conversion_uploads_queue(*, call_id: int, now: datetime | None = None) -> list[ConversionUpload]:
    """Create the call's upload for each enabled destination of its campaign (and source) that the call triggers, and
    queue those due now. Idempotent: one upload per call and destination (a unique constraint; an existing one is left
    as it is), so a repeated event, postback or retry never uploads twice. Returns the uploads created."""
    now = now or timezone.now()
    call = Call.objects.select_related("session", "source").filter(pk=call_id).first()
    if call is None or call.campaign_id is None or call.is_test:
        return []
    destinations = list(
        ConversionDestination.objects.filter(campaign_id=call.campaign_id, enabled=True)
        .filter(Q(source__isnull=True) | Q(source_id=call.source_id))
        .exclude(uploads__call_id=call.pk)
        .order_by("id")
    )
    if not destinations:
        return []
    data = upload_call_data(call)
    created: list[ConversionUpload] = []
    for destination in destinations:
        plain = destination_data(destination)
        if not platforms.triggered(plain, data):
            continue
        plan = platforms.upload_build(plain, data, now=now, base_urls=_base_urls())
        due = (data.conversion_at if plain.trigger != "qualified" else now) + timedelta(minutes=destination.delay_minutes)
        fields: dict[str, Any] = {"value": platforms.upload_value(plain, data), "currency": plain.currency,
                                  "conversion_time": data.conversion_at}
        if isinstance(plan, platforms.Ineligible):
            fields.update(status=UploadStatus.NOT_ELIGIBLE, reason=plan.reason[:500])
        else:
            fields.update(status=UploadStatus.PENDING, reason="waiting for the delay" if due > now else "queued",
                          next_try_at=max(due, now))
        with transaction.atomic():
            upload, made = ConversionUpload.objects.get_or_create(call=call, destination=destination, defaults=fields)
        if not made:
            continue
        created.append(upload)
        if upload.status == UploadStatus.PENDING and upload.next_try_at is not None and upload.next_try_at <= now:
            transaction.on_commit(functools.partial(_queue, upload.pk))
    return created


def conversion_uploads_due(*, now: datetime | None = None) -> int:
    """Try every pending upload whose time has come (delays and retries): the every-minute sweep. Each is tried under
    its row lock, so a sweep and a worker at once send it once. Returns how many were tried."""
    now = now or timezone.now()
    tried = 0
    for upload_id in ConversionUpload.objects.due(now).order_by("next_try_at").values_list("pk", flat=True)[:500]:
        if conversion_upload_attempt(upload_id=upload_id, now=now) is not None:
            tried += 1
    return tried


# --- Delivering ------------------------------------------------------------------------------------------------------


def retry_delay(*, attempt: int) -> timedelta:
    base = timedelta(seconds=settings.CALLTRACK_AD_UPLOAD_RETRY_BASE)
    return min(base * (2 ** max(attempt - 1, 0)), MAX_BACKOFF)


def _post(url: str, body: bytes, headers: dict[str, str]) -> outbound.Answer:
    return outbound.request("POST", url, body=body, headers=headers, timeout=settings.CALLTRACK_WEBHOOK_TIMEOUT, max_bytes=4000)


def _access_token(which: str, credentials: dict[str, str]) -> tuple[str | None, platforms.Outcome | None]:
    """An OAuth access token from the stored refresh token (Google, Microsoft), or the outcome that stops the try."""
    form = {"grant_type": "refresh_token", "client_id": credentials.get("client_id", ""),
            "refresh_token": credentials.get("refresh_token", "")}
    if credentials.get("client_secret"):
        form["client_secret"] = credentials["client_secret"]
    if which == "microsoft":
        form["scope"] = "https://ads.microsoft.com/msads.manage offline_access"
    answer = _post(settings.CALLTRACK_AD_PLATFORM_URLS[TOKEN_URLS[which]], urlencode(form).encode(),
                   {"Content-Type": "application/x-www-form-urlencoded"})
    try:
        data = json.loads(answer.body.decode("utf-8", "replace") or "{}")
    except ValueError:
        data = {}
    if answer.ok and isinstance(data, dict) and data.get("access_token"):
        return str(data["access_token"]), None
    if answer.status in (408, 429) or answer.status >= 500:
        return None, platforms.Outcome("retry", f"sign-in HTTP {answer.status}")
    detail = data.get("error_description") or data.get("error") if isinstance(data, dict) else ""
    return None, platforms.Outcome("refused", f"sign-in refused (HTTP {answer.status}): {detail or 'check the credentials'}"[:500])


def google_access_token(credentials: dict[str, str]) -> tuple[str | None, platforms.Outcome | None]:
    """A Google OAuth access token from the stored refresh token (the Google Ads library is handed it)."""
    try:
        return _access_token("google", credentials)
    except outbound.OutboundRefused as exc:
        return None, platforms.Outcome("refused", f"refused by calltrack's outbound rules: {exc}"[:500])
    except TimeoutError:
        return None, platforms.Outcome("retry", f"sign-in timed out after {settings.CALLTRACK_WEBHOOK_TIMEOUT} s")
    except (OSError, ValueError) as exc:
        return None, platforms.Outcome("retry", f"sign-in could not connect: {exc}"[:500])


def _deliver(kind: str, plan: platforms.Plan, credentials: dict[str, str]) -> tuple[platforms.Outcome, str]:
    """Send ``plan``; the outcome and the platform's answer (an excerpt). Never raises for network trouble."""
    missing = [name for name in platforms.CREDENTIALS[kind] if not credentials.get(name)]
    if missing:
        return platforms.Outcome("refused", f"missing credentials: {', '.join(missing)}"), ""
    if plan.rpc:  # Google Ads: gRPC through the official library
        from tracking.services.google_ads import google_ads_send

        token, stop = google_access_token(credentials)
        if stop is not None or token is None:
            return stop or platforms.Outcome("refused", "no access token"), ""
        return google_ads_send(plan=plan, credentials=credentials, access_token=token)
    try:
        headers = {"Content-Type": "application/json", "User-Agent": "calltrack-conversions/1", **plan.headers}
        if plan.token:
            token, stop = _access_token(plan.token, credentials)
            if stop is not None:
                return stop, ""
            headers["Authorization"] = f"Bearer {token}"
        answer = _post(plan.url, plan.encoded(), headers)
    except outbound.OutboundRefused as exc:
        return platforms.Outcome("refused", f"refused by calltrack's outbound rules: {exc}"[:500]), ""
    except TimeoutError:
        return platforms.Outcome("retry", f"timed out after {settings.CALLTRACK_WEBHOOK_TIMEOUT} s"), ""
    except (OSError, ValueError) as exc:
        return platforms.Outcome("retry", f"could not connect: {exc}"[:500]), ""
    text = answer.body.decode("utf-8", "replace")[:2000]
    return platforms.answer_read(kind, status=answer.status, body=answer.body, plan=plan), text


def conversion_upload_attempt(*, upload_id: int, now: datetime | None = None) -> ConversionUpload | None:
    """Make the next try of a pending upload (or of its pending adjustment) and write its outcome.

    Holds the upload's row lock while it sends (SKIP LOCKED: another worker trying it at the same moment gets None and
    does nothing); an upload no longer pending, or not due yet, is returned unchanged. Idempotent per call and
    destination: once sent it is never sent again (an adjustment is a separate, explicit request). The eligibility is
    decided again at send time (a delay may have taken the call out of a platform's window)."""
    now = now or timezone.now()
    with transaction.atomic():
        upload = (
            ConversionUpload.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("destination", "call", "call__session", "call__source").filter(pk=upload_id).first()
        )
        if upload is None:
            return None
        if upload.status != UploadStatus.PENDING or (upload.next_try_at is not None and upload.next_try_at > now):
            return upload
        destination, call = upload.destination, upload.call
        plain = destination_data(destination)
        data = upload_call_data(call)
        if upload.conversion_time is not None:  # as first sent: an adjustment names the same conversion
            data = replace(data, conversion_at=upload.conversion_time)
        plan = platforms.upload_build(plain, data, now=now, base_urls=_base_urls(), adjustment=upload.adjustment)
        if upload.adjustment != Adjustment.RETRACTION:  # what is sent now (a restated value, one changed while delayed)
            upload.value = platforms.upload_value(plain, data)
        upload.attempts += 1
        upload.next_try_at = None
        if isinstance(plan, platforms.Ineligible):
            # An adjustment a platform does not take leaves the upload as it was sent, with the reason.
            upload.status = UploadStatus.SENT if upload.adjustment and upload.sent_at else UploadStatus.NOT_ELIGIBLE
            upload.reason = plan.reason[:500]
        elif plan.local:
            upload.status, upload.payload, upload.sent_at = UploadStatus.SENT, plan.body, now
            upload.platform_id = plan.platform_id
            upload.reason = f"recorded locally, nothing sent ({upload.adjustment})" if upload.adjustment else "recorded locally, nothing sent"
            upload.response = ""
        else:
            upload.payload = plan.body
            outcome, text = _deliver(plain.kind, plan, plain.credentials)
            upload.response = text
            if outcome.status == "sent":
                upload.status, upload.sent_at, upload.platform_id = UploadStatus.SENT, now, outcome.platform_id[:200]
                upload.reason = (f"{upload.adjustment} sent: " if upload.adjustment else "") + outcome.reason
            elif outcome.status == "retry" and upload.attempts < settings.CALLTRACK_AD_UPLOAD_MAX_ATTEMPTS:
                upload.next_try_at = now + (outcome.retry_after or retry_delay(attempt=upload.attempts))
                upload.reason = f"try {upload.attempts} failed, trying again at {upload.next_try_at:%H:%M:%S} UTC: {outcome.reason}"[:500]
            else:
                upload.status = UploadStatus.REFUSED
                upload.reason = (outcome.reason if outcome.status == "refused"
                                 else f"gave up after {upload.attempts} tries: {outcome.reason}")[:500]
        upload.save(update_fields=[
            "status", "reason", "value", "attempts", "next_try_at", "payload", "sent_at", "platform_id", "response", "updated_at",
        ])
    return upload


# --- Adjustments -------------------------------------------------------------------------------------------------------


def conversion_uploads_adjust(*, call_id: int, adjustment: str, now: datetime | None = None) -> int:
    """The call's conversion was revoked ("retraction") or its value changed ("restatement"): each upload already sent
    to a platform that takes adjustments gets one, queued after the commit (under the upload's row lock); one not sent
    yet is sent with the new value, or, revoked, not at all. Returns how many uploads changed."""
    now = now or timezone.now()
    changed = 0
    with transaction.atomic():
        for upload in ConversionUpload.objects.select_for_update().select_related("destination").filter(call_id=call_id).order_by("pk"):
            kind = upload.destination.kind
            if upload.status == UploadStatus.PENDING and upload.adjustment == Adjustment.NONE:
                if adjustment == Adjustment.RETRACTION:
                    upload.status, upload.reason, upload.next_try_at = UploadStatus.NOT_ELIGIBLE, "the conversion was revoked before it was sent", None
                    upload.save(update_fields=["status", "reason", "next_try_at", "updated_at"])
                    changed += 1
                continue
            if upload.status != UploadStatus.SENT:
                continue
            if kind not in platforms.ADJUSTABLE:
                upload.reason = f"{adjustment} not sent: {upload.destination.get_kind_display()} takes no adjustments"[:500]
                upload.save(update_fields=["reason", "updated_at"])
                changed += 1
                continue
            upload.status, upload.adjustment, upload.attempts, upload.next_try_at = UploadStatus.PENDING, adjustment, 0, now
            upload.reason = f"{adjustment} queued"
            upload.save(update_fields=["status", "adjustment", "attempts", "next_try_at", "reason", "updated_at"])
            transaction.on_commit(functools.partial(_queue, upload.pk))
            changed += 1
    return changed


# --- Destinations: the one write path of the admin and the API ---------------------------------------------------------


def credentials_merge(stored: dict[str, Any] | None, given: dict[str, Any] | None) -> dict[str, str]:
    """The stored credentials with ``given`` applied: a name with a value replaces it, a name with "" removes it;
    names not given are kept (a form or an API call never has to send them back, and never sees them)."""
    merged = {str(k): str(v) for k, v in (stored or {}).items()}
    for name, value in (given or {}).items():
        if value in ("", None):
            merged.pop(str(name), None)
        else:
            merged[str(name)] = str(value)
    return merged


def conversion_destination_save(*, destination: ConversionDestination, fields: dict[str, Any],
                                credentials: dict[str, Any] | None = None) -> ConversionDestination:
    """Create or change a destination after full validation, saving only ``fields`` (and the credentials when new ones
    are given, merged into the stored ones). A trigger bumps its campaign's configuration version (voice routing then
    knows whether the campaign sends conversions)."""
    from calltrack.model_writes import instance_apply_and_save

    fields = dict(fields)
    if credentials:
        fields["credentials"] = credentials_merge(destination.credentials, credentials)
    return instance_apply_and_save(instance=destination, fields=fields)


def conversion_destination_delete(*, destination: ConversionDestination) -> None:
    """Delete a destination and its uploads' records (a trigger bumps its campaign's configuration version)."""
    destination.delete()
