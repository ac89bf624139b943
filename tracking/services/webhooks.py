"""Outgoing webhooks: which deliveries a call event makes, sending one, retrying, re-sending.

Flow: ``call_lifecycle_notify`` (after the transaction commits) calls ``webhook_deliveries_queue``, which
renders each matching webhook into a ``WebhookDelivery`` row (URL and body fixed at the time of the event)
and queues ``tracking.tasks.webhook_deliver(delivery_id)`` on django-q2. The voice request only writes rows;
the HTTP request happens in a worker.

Retries: on a timeout, a connection error, 408, 429 or a 5xx the delivery is retried with exponential
backoff (``CALLTRACK_WEBHOOK_RETRY_BASE`` seconds, doubling, at most one hour) until
``CALLTRACK_WEBHOOK_MAX_ATTEMPTS`` tries, then marked failed. The next try is a django-q2 ``Schedule`` of
type ONCE with ``next_run``: it survives worker restarts, works with every broker (ORM or Redis), and costs
no worker while waiting. The cluster's scheduler looks at schedules about every 30 seconds, so a retry
runs up to ~30 s after its due time. Other 4xx answers fail at once (the receiver refused the request).

Lost tries: a try is claimed with a lease (``next_attempt_at`` moves to the end of the lease, past the longest a
worker may spend on it: django-q2's task timeout), and a delivery is tried only when due (no lease, no retry time
still to come). With the Redis broker a queued task is gone from Redis once a cluster took it, so a cluster killed
hard (SIGKILL, out of memory, a machine lost) loses the tasks it held; ``webhook_deliveries_requeue`` (scheduled
every minute) queues again every delivery left due for ``REQUEUE_AFTER``. A task queued twice sends once: the
second finds the try claimed (lease) or done.

Signature: ``X-Calltrack-Signature: sha256=<hex>``, the HMAC-SHA256 of the request body with the
webhook's secret (for GET, which has no body, of the full URL).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from urllib.parse import urlencode

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from django_q.models import Schedule
from django_q.tasks import async_task

from calltrack import metrics, outbound
from calltrack.logs import log_context_bound
from tracking import webhook_templates
from tracking.models import Call, DeliveryStatus, TextMessage, Webhook, WebhookAttempt, WebhookDelivery, WebhookMethod
from tracking.services.recordings import call_recording_stream_url

log = logging.getLogger("calltrack.webhooks")

DELIVER_TASK = "tracking.tasks.webhook_deliver"
SIGNATURE_HEADER = "X-Calltrack-Signature"
RETRY_STATUSES = frozenset({408, 429})
MAX_BACKOFF = timedelta(hours=1)
#: A delivery due this long without a try is requeued (its task was lost); duplicates of a task still queued are harmless.
REQUEUE_AFTER = timedelta(minutes=2)
REQUEUE_BATCH = 500


def _iso(value: datetime | None) -> str:
    return value.isoformat() if value else ""


def _money(value: Decimal) -> str:
    return f"{value:.2f}"


def webhook_values(*, call: Call, event: str) -> dict[str, str]:
    """Every token's value for ``call`` (see ``tracking.webhook_templates.TOKENS``)."""
    marketing = call.marketing_data if isinstance(call.marketing_data, dict) else {}
    source, handler, campaign = call.source, call.handler, call.campaign
    values = {
        "event": event,
        "call_id": str(call.pk),
        "call_sid": call.call_sid,
        "caller_number": call.caller_number,
        "called_number": call.called_number,
        "caller_city": call.caller_city,
        "caller_state": call.caller_state,
        "caller_zip": call.caller_zip,
        "caller_country": call.caller_country,
        "campaign_id": campaign.campaign_id if campaign else "",
        "campaign_name": campaign.name if campaign else "",
        "source_id": source.source_id if source else "",
        "source_name": source.name if source else "",
        "handler_id": str(handler.pk) if handler else "",
        "handler_name": handler.name if handler else "",
        "buyer_id": handler.buyer_id if handler else "",
        "status": call.status,
        "started_at": _iso(call.started_at),
        "answered_at": _iso(call.answered_at),
        "ended_at": _iso(call.ended_at),
        "duration": str(call.duration),
        "talk_time": str(call.talk_time),
        "recording_url": call_recording_stream_url(call),
        "converted": "true" if call.converted else "false",
        "conversion_status": call.conversion_status,
        "conversion_reason": call.conversion_reason,
        "revenue": _money(call.revenue),
        "payout": _money(call.payout),
        "margin": _money(call.margin),
        "visitor_id": call.visitor_id,
        "landing_page": call.landing_page,
        "referrer": call.referrer,
        "test_call": "true" if call.is_test else "false",
    }
    for key in ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content", "gclid", "fbclid", "msclkid"):
        value = marketing.get(key, "")
        values[key] = "" if value is None else str(value)
    return values


@dataclass(frozen=True)
class RenderedRequest:
    method: str
    url: str
    body: str
    content_type: str


def webhook_render(*, webhook: Webhook, call: Call, event: str) -> RenderedRequest:
    """The request ``webhook`` sends for ``event`` of ``call``: URL and body with the tokens filled in."""
    return _render(webhook, webhook_values(call=call, event=event), tags=call.tags, data=call.marketing_data)


def _render(webhook: Webhook, values: dict[str, str], *, tags: object, data: object) -> RenderedRequest:
    tags = tags if isinstance(tags, dict) else {}
    data = data if isinstance(data, dict) else {}
    url = webhook_templates.render(webhook.url, values=values, tags=tags, data=data, escape="url")
    if webhook.method == WebhookMethod.GET:
        return RenderedRequest("GET", url, "", "")
    if webhook.method == WebhookMethod.POST_FORM:
        if webhook.body_template.strip():
            body = webhook_templates.render(webhook.body_template, values=values, tags=tags, data=data, escape="form")
        else:
            body = urlencode(values)
        return RenderedRequest("POST", url, body, "application/x-www-form-urlencoded")
    if webhook.body_template.strip():
        body = webhook_templates.render(webhook.body_template, values=values, tags=tags, data=data, escape="json")
    else:
        body = json.dumps({**values, "tags": tags, "marketing_data": data}, sort_keys=True, default=str)
    return RenderedRequest("POST", url, body, "application/json")


def webhook_signature(*, secret: str, payload: bytes) -> str:
    """``sha256=<hex>``: what receivers compare (with hmac.compare_digest) to the X-Calltrack-Signature header."""
    return "sha256=" + hmac.new(secret.encode(), payload, hashlib.sha256).hexdigest()


def _queue(delivery_id: int) -> None:
    async_task(DELIVER_TASK, delivery_id, task_name=f"webhook-delivery-{delivery_id}")


def webhook_text_values(*, text: TextMessage, event: str) -> dict[str, str]:
    """Every token's value for a text's event: the text's own tokens, and the call tokens read from the text (its
    contact as the caller, our number as the number called, its credit and money)."""
    marketing = text.marketing_data if isinstance(text.marketing_data, dict) else {}
    source, campaign, handler = text.source, text.campaign, text.handler
    ours = text.to_number if text.direction == "inbound" else text.from_number
    values = {token: "" for token in webhook_templates.TOKENS}
    values.update({
        "event": event, "message_sid": text.message_sid, "message_body": text.body, "message_direction": text.direction,
        "message_media": " ".join(text.media_urls or []), "caller_number": text.contact_number, "called_number": ours,
        "caller_city": text.caller_city, "caller_state": text.caller_state, "caller_zip": text.caller_zip,
        "caller_country": text.caller_country, "campaign_id": campaign.campaign_id if campaign else "",
        "campaign_name": campaign.name if campaign else "", "source_id": source.source_id if source else "",
        "source_name": source.name if source else "", "handler_id": str(handler.pk) if handler else "",
        "handler_name": handler.name if handler else "", "buyer_id": handler.buyer_id if handler else "",
        "status": text.status, "started_at": _iso(text.created_at), "converted": "true" if text.converted else "false",
        "conversion_reason": text.conversion_reason, "revenue": _money(text.revenue), "payout": _money(text.payout),
        "margin": _money(text.margin), "visitor_id": text.visitor_id, "landing_page": text.landing_page, "referrer": text.referrer,
        "test_call": "true" if text.is_test else "false",
    })
    for key in ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content", "gclid", "fbclid", "msclkid"):
        value = marketing.get(key, "")
        values[key] = "" if value is None else str(value)
    return values


def text_webhooks_queue(*, text: TextMessage, event: str) -> list[WebhookDelivery]:
    """``message.received`` / ``message.sent``: a delivery for each enabled webhook of the text's campaign listening
    to ``event``, sent like a call's (signed, retried, queued on commit). Test texts send none. Not idempotent: call
    once per event."""
    if text.campaign_id is None or text.is_test:
        return []
    hooks = [h for h in Webhook.objects.filter(campaign_id=text.campaign_id, enabled=True).order_by("name", "pk") if event in (h.events or [])]
    deliveries = []
    for hook in hooks:
        request = _render(hook, webhook_text_values(text=text, event=event), tags=text.tags, data=text.marketing_data)
        delivery = WebhookDelivery.objects.create(webhook=hook, text=text, event=event, url=request.url, body=request.body)
        transaction.on_commit(functools.partial(_queue, delivery.pk))
        deliveries.append(delivery)
    return deliveries


def webhook_deliveries_queue(*, call: Call, event: str) -> list[WebhookDelivery]:
    """Create a delivery for each enabled webhook of the call's campaign listening to ``event`` and queue it.

    The task is queued on commit of the surrounding transaction (at once outside one). Not idempotent:
    call once per event.
    """
    if call.campaign_id is None:
        return []
    hooks = [h for h in Webhook.objects.filter(campaign_id=call.campaign_id, enabled=True).order_by("name", "pk") if event in (h.events or [])]
    if not hooks:
        return []
    call = Call.objects.select_related("source", "handler", "campaign").get(pk=call.pk)
    deliveries = []
    with transaction.atomic():
        for hook in hooks:
            request = webhook_render(webhook=hook, call=call, event=event)
            delivery = WebhookDelivery.objects.create(webhook=hook, call=call, event=event, url=request.url, body=request.body)
            transaction.on_commit(functools.partial(_queue, delivery.pk))
            deliveries.append(delivery)
    return deliveries


def retry_delay(*, attempt: int) -> timedelta:
    """Wait before try ``attempt + 1`` after try ``attempt`` failed: base, 2x base, 4x base ... at most an hour."""
    base = timedelta(seconds=settings.CALLTRACK_WEBHOOK_RETRY_BASE)
    return min(base * (2 ** max(attempt - 1, 0)), MAX_BACKOFF)


@dataclass(frozen=True)
class _Answer:
    status_code: int | None
    body: str
    error: str
    duration_ms: int
    final: bool = False  # not worth retrying (the URL may not be called)


def _send(delivery: WebhookDelivery, *, method: str, content_type: str, secret: str) -> _Answer:
    """One try, through calltrack.outbound: public addresses only (checked at connect time), no redirects."""
    payload = delivery.body.encode() if method == "POST" else delivery.url.encode()
    headers = {
        "User-Agent": "calltrack-webhooks/1",
        "X-Calltrack-Event": delivery.event,
        "X-Calltrack-Delivery": str(delivery.pk),
        SIGNATURE_HEADER: webhook_signature(secret=secret, payload=payload),
    }
    if method == "POST":
        headers["Content-Type"] = content_type
    started = time.monotonic()

    def took() -> int:
        return int((time.monotonic() - started) * 1000)

    try:
        answer = outbound.request(
            method, delivery.url, body=delivery.body.encode() if method == "POST" else None, headers=headers,
            timeout=settings.CALLTRACK_WEBHOOK_TIMEOUT,
        )
    except outbound.OutboundRefused as exc:
        return _Answer(None, "", f"refused: {exc}"[:500], took(), final=True)
    except TimeoutError:
        return _Answer(None, "", f"timed out after {settings.CALLTRACK_WEBHOOK_TIMEOUT} s", took())
    except (OSError, ValueError) as exc:
        return _Answer(None, "", f"could not connect: {exc}"[:500], took())
    if 300 <= answer.status < 400:
        where = answer.headers.get("location", "")[:200]
        return _Answer(answer.status, "", f"redirect to {where!r} not followed: give the final URL", took())
    return _Answer(answer.status, answer.body.decode("utf-8", "replace"), "", took())


def _content_type(webhook: Webhook) -> tuple[str, str]:
    if webhook.method == WebhookMethod.GET:
        return "GET", ""
    if webhook.method == WebhookMethod.POST_FORM:
        return "POST", "application/x-www-form-urlencoded"
    return "POST", "application/json"


def webhook_delivery_attempt(*, delivery_id: int) -> WebhookDelivery | None:
    """Make the next try of a delivery: send it, log the try, then mark it delivered, retry later or failed.

    Safe to run twice or concurrently: a try is claimed by a conditional UPDATE of ``attempts`` that also takes
    a lease (``try_lease``) and only succeeds when the delivery is due (the loser, or a task that comes early or
    while another try is under way, does nothing), and a delivery already delivered or failed is left alone. No
    lock is held while the receiver answers. Returns the delivery (None when it is not due, or another worker
    claimed the try).
    """
    # The call's CallSid comes with the same statement: every record logged for this delivery carries it.
    delivery = WebhookDelivery.objects.select_related("webhook").annotate(call_sid=F("call__call_sid")).filter(pk=delivery_id).first()
    if delivery is None or delivery.status not in (DeliveryStatus.PENDING, DeliveryStatus.RETRYING):
        return delivery
    with log_context_bound(call_sid=delivery.call_sid, webhook_delivery=delivery.pk):
        return _attempt(delivery)


def _attempt(delivery: WebhookDelivery) -> WebhookDelivery | None:
    now = timezone.now()
    claimed = WebhookDelivery.objects.filter(
        Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now), pk=delivery.pk, status=delivery.status, attempts=delivery.attempts,
    ).update(attempts=delivery.attempts + 1, next_attempt_at=now + try_lease())
    if not claimed:
        return None
    delivery.attempts += 1
    webhook = delivery.webhook
    if not webhook.enabled:
        answer = _Answer(None, "", "the webhook was disabled", 0)
    else:
        method, content_type = _content_type(webhook)
        answer = _send(delivery, method=method, content_type=content_type, secret=webhook.secret)

    ok = answer.status_code is not None and 200 <= answer.status_code < 300
    retryable = webhook.enabled and not answer.final and (
        answer.status_code is None or answer.status_code >= 500 or answer.status_code in RETRY_STATUSES
    )
    if ok:
        outcome = DeliveryStatus.DELIVERED
    elif retryable and delivery.attempts < settings.CALLTRACK_WEBHOOK_MAX_ATTEMPTS:
        outcome = DeliveryStatus.RETRYING
    else:
        outcome = DeliveryStatus.FAILED

    # Only a receiver's success answer is kept: an error page may be anyone's (and shown in the admin).
    excerpt = answer.body[:500] if ok else ""
    number = WebhookAttempt.objects.filter(delivery=delivery).count() + 1
    with transaction.atomic():
        WebhookAttempt.objects.create(
            delivery=delivery, number=number, at=now, duration_ms=answer.duration_ms, status_code=answer.status_code,
            error=answer.error, response_excerpt=excerpt, outcome=outcome,
        )
        delivery.status = outcome
        delivery.last_status_code = answer.status_code
        delivery.last_error = answer.error or ("" if ok else f"HTTP {answer.status_code}")
        delivery.response_excerpt = excerpt
        delivery.delivered_at = timezone.now() if ok else None
        delivery.next_attempt_at = None
        if outcome == DeliveryStatus.RETRYING:
            delivery.next_attempt_at = timezone.now() + retry_delay(attempt=delivery.attempts)
            Schedule.objects.create(
                name=f"webhook delivery {delivery.pk} try {number + 1}",
                func=DELIVER_TASK,
                args=repr((delivery.pk,)),
                schedule_type=Schedule.ONCE,
                repeats=-1,
                next_run=delivery.next_attempt_at,
            )
        delivery.save(update_fields=["status", "last_status_code", "last_error", "response_excerpt", "delivered_at", "next_attempt_at"])
    metrics.webhook_delivery_tried(
        outcome=outcome, lag_seconds=(delivery.delivered_at - delivery.created_at).total_seconds() if ok and delivery.delivered_at else None,
    )
    if outcome == DeliveryStatus.FAILED:
        log.warning("webhook delivery %s to %s failed after %s tries: %s", delivery.pk, delivery.url[:200], delivery.attempts, delivery.last_error)
    return delivery


def try_lease() -> timedelta:
    """How long a claimed try keeps others off: longer than a worker may spend on it (django-q2 stops a task after
    the cluster's ``timeout``; a try's own network waits are bounded by ``CALLTRACK_WEBHOOK_TIMEOUT``)."""
    worst = max(float(settings.Q_CLUSTER.get("timeout") or 0), 2 * settings.CALLTRACK_WEBHOOK_TIMEOUT)
    return timedelta(seconds=worst + 30)


def webhook_deliveries_requeue(*, now: datetime | None = None) -> int:
    """Queue again the deliveries due for ``REQUEUE_AFTER`` without a try: their task was lost with a cluster killed
    hard, a lease ran out (the worker died mid-try) or a retry's task was lost. At most ``REQUEUE_BATCH`` a run,
    oldest first. Safe to run at any time and on several clusters: a task queued twice sends once (see
    ``webhook_delivery_attempt``). Returns how many were queued."""
    limit = (now or timezone.now()) - REQUEUE_AFTER
    stale = (
        WebhookDelivery.objects.filter(status__in=[DeliveryStatus.PENDING, DeliveryStatus.RETRYING])
        .filter(Q(next_attempt_at__lte=limit) | Q(next_attempt_at__isnull=True, created_at__lte=limit))
        .order_by("created_at")
        .values_list("pk", flat=True)[:REQUEUE_BATCH]
    )
    ids = list(stale)
    for pk in ids:
        _queue(pk)
    return len(ids)


class DeliveryNotResendable(Exception):
    """The delivery is still being tried; wait for it to be delivered or to fail."""


def webhook_delivery_resend(*, delivery: WebhookDelivery) -> WebhookDelivery:
    """Send a delivered or failed delivery again (same URL and body, signed again), with a fresh set of tries.

    The status change is a conditional UPDATE, so two operators clicking at once queue it once.
    """
    changed = WebhookDelivery.objects.filter(
        pk=delivery.pk, status__in=[DeliveryStatus.FAILED, DeliveryStatus.DELIVERED]
    ).update(status=DeliveryStatus.PENDING, attempts=0, next_attempt_at=None)
    if not changed:
        raise DeliveryNotResendable(f"delivery #{delivery.pk} is still being tried ({delivery.get_status_display().lower()})")
    transaction.on_commit(lambda: _queue(delivery.pk))
    delivery.refresh_from_db()
    return delivery


class NoCallToTestWith(Exception):
    """The webhook's campaign has no call yet to fill a test delivery with."""


TEST_EVENT = "test"


def webhook_test_send(*, webhook: Webhook) -> WebhookDelivery:
    """Send ``webhook`` once now, filled in from its campaign's latest call, as event "test", and log the try like
    any delivery (signed, outbound rules applied). A failed test is not retried. Raises NoCallToTestWith when the
    campaign has no call yet. Not idempotent: each run sends once more."""
    latest = Call.objects.filter(campaign_id=webhook.campaign_id).order_by("-started_at").values_list("pk", flat=True).first()
    if latest is None:
        raise NoCallToTestWith(f"Campaign '{webhook.campaign}' has no call yet: place a test call first.")
    call = Call.objects.select_related("source", "handler", "campaign").get(pk=latest)
    request = webhook_render(webhook=webhook, call=call, event=TEST_EVENT)
    delivery = WebhookDelivery.objects.create(webhook=webhook, call=call, event=TEST_EVENT, url=request.url, body=request.body)
    webhook_delivery_attempt(delivery_id=delivery.pk)
    WebhookDelivery.objects.filter(pk=delivery.pk, status=DeliveryStatus.RETRYING).update(status=DeliveryStatus.FAILED, next_attempt_at=None)
    delivery.refresh_from_db()
    return delivery

