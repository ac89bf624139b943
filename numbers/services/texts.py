"""Texts we send from our numbers (replies, auto-replies, forwards) and what the carrier says of them afterwards;
the opt-outs that stop them (issue 29).

Every outbound text goes through ``text_send`` (or, for an answer written into the messaging webhook's TwiML,
``text_pending_create``): one place checks the opt-outs, so nothing is ever sent to a contact who texted STOP."""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.models import User
from django.core.mail import EmailMessage
from django.db import IntegrityError, transaction
from django.db.models import F, Q, QuerySet
from django.db.models.functions import Coalesce
from django.utils import timezone
from django_q.models import Schedule
from django_q.tasks import async_task

from calltrack.carriers import sms_webhook_urls
from calltrack.numbers.models import TrackingNumber
from calltrack.numbers.providers import Carrier, CarrierError, get_carrier
from tracking.models import (
    EmailForwardStatus,
    Handler,
    TextDirection,
    TextEmailForward,
    TextMessage,
    TextOptOut,
    TextPurpose,
    TextStatus,
    WebhookEvent,
)
from tracking.models.texts import MAX_BODY, MAX_MEDIA, PENDING_PREFIX, body_clean
from tracking.services.webhooks import text_webhooks_queue

log = logging.getLogger("calltrack.texts")

# The order a message's statuses come in; a late callback never takes a text back to an earlier one.
_RANK: dict[str, int] = {TextStatus.ACCEPTED: 0, TextStatus.QUEUED: 1, TextStatus.SENDING: 2, TextStatus.SENT: 3,
         TextStatus.DELIVERED: 4, TextStatus.UNDELIVERED: 4, TextStatus.FAILED: 4, TextStatus.READ: 5}


class TextRefused(Exception):
    """A text we will not send; ``str()`` says why."""


def text_opted_out(*, contact_number: str, our_number: str) -> bool:
    return TextOptOut.objects.filter(contact_number=contact_number, our_number=our_number).exists()


def text_opt_out_record(*, contact_number: str, our_number: str, keyword: str, at: datetime | None = None,
                        account_id: int | None = None) -> None:
    """Keep that ``contact_number`` opted out of ``our_number`` (idempotent; two deliveries racing: the unique pair
    decides, the second changes nothing)."""
    try:
        with transaction.atomic():
            TextOptOut.objects.get_or_create(contact_number=contact_number, our_number=our_number,
                                             defaults={"keyword": keyword[:20], "opted_out_at": at or timezone.now(),
                                                       **({"account_id": account_id} if account_id is not None else {})})
    except IntegrityError:
        pass


def text_opt_in_record(*, contact_number: str, our_number: str) -> bool:
    """The contact texted START: texts may go to them again from ``our_number``. Whether they had opted out."""
    deleted, _ = TextOptOut.objects.filter(contact_number=contact_number, our_number=our_number).delete()
    return bool(deleted)


@dataclass(frozen=True)
class Thread:
    """What an outbound text copies from the conversation it belongs to (the credit of the text it answers)."""

    about: TextMessage | None = None

    def fields(self) -> dict[str, object]:
        t = self.about
        if t is None:
            return {}
        return {"account_id": t.account_id, "tracking_number_id": t.tracking_number_id, "campaign_id": t.campaign_id, "source_id": t.source_id,
                "session_id": t.session_id, "marketing_data": t.marketing_data, "landing_page": t.landing_page,
                "referrer": t.referrer, "visitor_id": t.visitor_id, "is_test": t.is_test}


def _outbound(*, to: str, from_number: str, body: str, media_urls: Sequence[str]) -> tuple[str, list[str]]:
    body = body_clean(body, MAX_BODY).strip()
    media = [u for u in media_urls if isinstance(u, str) and u.startswith("https://") and len(u) <= 1000][:MAX_MEDIA]
    if not body and not media:
        raise TextRefused("A text needs a body or a media URL.")
    if text_opted_out(contact_number=to, our_number=from_number):
        raise TextRefused(f"{to} texted STOP to {from_number}: nothing is sent to them until they text START.")
    return body, media


def text_send(*, to: str, from_number: str, body: str, purpose: str, media_urls: Sequence[str] = (), thread: Thread = Thread(),
              handler: Handler | None = None, sent_by: User | None = None, carrier: Carrier | None = None) -> TextMessage:
    """Send a text from our ``from_number`` through the carrier (its status callback set to /sms/status) and keep it.
    Refused (``TextRefused``) to an opted-out contact or without a body; a carrier's refusal is a ``CarrierError``
    and keeps nothing. Not idempotent: each call sends a text."""
    contact = thread.about.contact_number if thread.about is not None and purpose == TextPurpose.FORWARD else to
    body, media = _outbound(to=to, from_number=from_number, body=body, media_urls=media_urls)
    carrier = carrier or get_carrier(account_id=_sender_account(thread.about, from_number))
    sid = carrier.text_send(to=to, from_number=from_number, body=body, media_urls=media, status_url=sms_webhook_urls()[1])
    text = TextMessage.objects.create(
        message_sid=sid[:64], direction=TextDirection.OUTBOUND, purpose=purpose, from_number=from_number, to_number=to,
        contact_number=contact, body=body, media_urls=media, status=TextStatus.QUEUED, handler=handler, sent_by=sent_by,
        **thread.fields(),
    )
    text_webhooks_queue(text=text, event=WebhookEvent.MESSAGE_SENT)
    return text


def _sender_account(text: TextMessage | None, from_number: str) -> int | None:
    """The account whose Twilio (sub)account sends from ``from_number``: the conversation's, else the number's."""
    if text is not None and text.account_id is not None:
        return text.account_id
    if (settings.CALLTRACK_CARRIER or "local").lower() != "twilio":
        return None  # only Twilio has subaccounts: no statement
    return TrackingNumber.objects.filter(number=from_number).values_list("account_id", flat=True).first()


def text_pending_create(*, to: str, from_number: str, body: str, purpose: str, thread: Thread) -> TextMessage:
    """Keep a text we answer inside the messaging webhook's TwiML (``<Message statusCallback=...?text=id>``): its
    carrier sid is not known yet (``pending:<inbound sid>``) until its first status callback names it. Refused like
    ``text_send``."""
    body, _ = _outbound(to=to, from_number=from_number, body=body, media_urls=())
    about = thread.about.message_sid if thread.about is not None else timezone.now().isoformat()
    text = TextMessage.objects.create(
        message_sid=f"{PENDING_PREFIX}{about}:{purpose}"[:64], direction=TextDirection.OUTBOUND, purpose=purpose,
        from_number=from_number, to_number=to, contact_number=to, body=body, status=TextStatus.QUEUED, **thread.fields(),
    )
    text_webhooks_queue(text=text, event=WebhookEvent.MESSAGE_SENT)
    return text


TWILIO_MESSAGE_STATUS = {s.value: s.value for s in TextStatus}


def text_status_record(*, message_sid: str, status: str, error_code: str = "", text_id: int | None = None,
                       at: datetime | None = None, account_id: int | None = None) -> TextMessage | None:
    """The carrier's status callback for one of our texts: its status moves forward only (a late ``sent`` after
    ``delivered`` changes nothing), under the text's row lock. A text answered in TwiML (``text_id``) learns its
    carrier sid here. None when the text is not ours, or (``account_id``: the account whose Twilio subaccount signed
    the callback) not that account's."""
    at = at or timezone.now()
    with transaction.atomic():
        rows = TextMessage.objects.select_for_update()
        if account_id is not None:
            rows = rows.filter(account_id=account_id)
        text = rows.filter(pk=text_id).first() if text_id is not None else rows.filter(message_sid=message_sid).first()
        if text is None or text.direction != TextDirection.OUTBOUND:
            return None
        changed = []
        if text.message_sid.startswith(PENDING_PREFIX) and message_sid and message_sid != text.message_sid:
            if not TextMessage.objects.filter(message_sid=message_sid).exists():
                text.message_sid = message_sid
                changed.append("message_sid")
        if _RANK.get(status, -1) >= _RANK.get(text.status, -1) and status != text.status:
            text.status, text.status_at = status, at
            changed += ["status", "status_at"]
            if error_code:
                text.error_code = error_code[:10]
                changed.append("error_code")
        if changed:
            text.save(update_fields=changed)
    return text


FORWARD_TASK = "calltrack.numbers.tasks.text_forward_task"
EMAIL_TASK = "calltrack.numbers.tasks.text_email_task"  # before email forwards had a record (kept for tasks queued then)
EMAIL_FORWARD_TASK = "calltrack.numbers.tasks.text_email_forward_task"
#: A forward the carrier failed (down, rate limited) is tried again after 30 s, 60 s, 120 s... (at most an hour), up to
#: FORWARD_MAX_ATTEMPTS tries; a refusal that another try cannot change (a bad number, our credentials) fails at once.
FORWARD_MAX_ATTEMPTS = 6
FORWARD_RETRY_BASE = timedelta(seconds=30)
FORWARD_MAX_BACKOFF = timedelta(hours=1)
RETRY_CODES = frozenset({"unavailable", "rate_limited", "failed"})
#: A failed forward's ``error_code`` (10 characters): the carrier's word for it, shortened; "opt_out" when refused.
_SHORT_CODES = {"unavailable": "down", "rate_limited": "rate_limit"}


def forward_retry_delay(*, attempt: int) -> timedelta:
    """The wait before try ``attempt + 1`` after try ``attempt`` failed: base, 2x base, 4x base... at most an hour."""
    return min(FORWARD_RETRY_BASE * (2 ** max(attempt - 1, 0)), FORWARD_MAX_BACKOFF)


def _task_queue(func: str, *args: object) -> None:
    async_task(func, *args, task_name=f"{func.rsplit('.', 1)[-1]}-{'-'.join(map(str, args))}"[:100])


def _retry_schedule(func: str, args: tuple[object, ...], *, attempt: int, what: str) -> datetime:
    """The next try of a task as a django-q2 Schedule (ONCE, at its due time): it survives worker restarts and costs no
    worker while waiting, as the webhooks' retries (tracking.services.webhooks)."""
    due = timezone.now() + forward_retry_delay(attempt=attempt)
    Schedule.objects.create(name=f"{what} try {attempt + 1}"[:100], func=func, args=repr(args), schedule_type=Schedule.ONCE,
                            repeats=-1, next_run=due)
    return due


def text_forward_to_handler(*, text: TextMessage, handler: Handler) -> TextMessage | None:
    """Route ``text`` to the handler and queue its forward to the handler's receiving number, from the tracking number
    it came to: kept as a pending outbound text (``pending:<sid>:forward``) that a django-q2 task sends after commit
    (``text_forward_send``), never inside the messaging webhook's request. None when the handler has no line, or
    refused (an opted-out line: checked here and again when sending)."""
    line = handler.receiving_number.number if handler.receiving_number_id else ""
    if not line:
        return None
    # The contact's text was routed to this handler (its collaborators see it; its postback may convert it).
    if text.handler_id != handler.pk:
        text.handler = handler
        text.save(update_fields=["handler"])
    try:
        body, media = _outbound(to=line, from_number=text.to_number, body=f"Text from {text.from_number}: {text.body}",
                                media_urls=text.media_urls)
    except TextRefused as exc:
        log.warning("MessageSid %r: not forwarded to handler %s: %s", text.message_sid, handler.pk, exc)
        return None
    forward = TextMessage.objects.create(
        message_sid=f"{PENDING_PREFIX}{text.message_sid}:{TextPurpose.FORWARD}"[:64], direction=TextDirection.OUTBOUND,
        purpose=TextPurpose.FORWARD, from_number=text.to_number, to_number=line, contact_number=text.contact_number, body=body,
        media_urls=media, status=TextStatus.QUEUED, handler=handler, **Thread(text).fields(),
    )
    transaction.on_commit(functools.partial(_task_queue, FORWARD_TASK, forward.pk, 1))
    return forward


def _forward_rows() -> QuerySet[TextMessage]:
    """The SMS forwards still in our hands: not yet accepted by the carrier (their sid is still ``pending:``)."""
    return TextMessage.objects.filter(purpose=TextPurpose.FORWARD, direction=TextDirection.OUTBOUND, message_sid__startswith=PENDING_PREFIX)


def _forward_status_url(forward: TextMessage) -> str:
    # ?text= names the forward to its status callback, which may come before the task has kept the carrier's sid; the
    # local carrier keeps this URL with the message, which lets a retry find a send whose worker died.
    return f"{sms_webhook_urls()[1]}?text={forward.pk}"


def text_forward_send(*, forward_id: int, attempt: int = 1, carrier: Carrier | None = None) -> TextMessage | None:
    """Send a queued forward through the carrier (the task's work). Its status says where it is: ``queued`` (waiting
    for a worker, or for its next try), ``sending`` (a worker holds it, from ``status_at`` for ``forward_lease()``,
    and may be talking to the carrier), ``sent`` once the carrier accepted it (then the carrier's callbacks:
    delivered, undelivered...), ``failed``.

    Claimed by a conditional UPDATE (queued -> sending), so a task run twice or by two workers sends once; the
    opt-out is checked now, at send time. A forward left ``sending`` by a worker that died (its lease ran out) is
    claimed again by compare-and-set on its old claim time, and the carrier is asked first whether it already holds
    that text (``Carrier.text_sent_find``): found, it is marked sent with the carrier's sid and not sent again. A
    carrier failure worth another try puts it back to queued and schedules try ``attempt + 1`` with backoff; the last
    try, or a refusal, marks it failed. Returns the forward; None when there is nothing to send (gone, sent already,
    given up, or another worker's)."""
    now = timezone.now()
    held = _forward_rows().filter(pk=forward_id).values("status", "status_at").first()
    if held is None:
        return None
    rows = _forward_rows().filter(pk=forward_id)
    if held["status"] == TextStatus.QUEUED:
        claimed = rows.filter(status=TextStatus.QUEUED).update(status=TextStatus.SENDING, status_at=now)
        dead_claim_at = None
    elif held["status"] == TextStatus.SENDING and held["status_at"] is not None and held["status_at"] < now - forward_lease():
        # The worker that claimed it at status_at died (or overran django-q2's timeout): take it over, unless another
        # worker did first (same old claim time, or nothing).
        claimed = rows.filter(status=TextStatus.SENDING, status_at=held["status_at"]).update(status_at=now)
        dead_claim_at = held["status_at"]
    else:
        return None
    if not claimed:
        return None
    forward = TextMessage.objects.get(pk=forward_id)
    carrier = carrier or get_carrier(account_id=_sender_account(forward, forward.from_number))
    status_url = _forward_status_url(forward)
    try:
        if dead_claim_at is not None:
            sid = _forward_sent_before(forward, carrier=carrier, status_url=status_url, since=dead_claim_at)
            if sid:
                log.warning("forward %s: the carrier already has it (%s): marked sent, not sent again", forward.pk, sid)
                return _forward_accepted(forward, sid)
        _outbound(to=forward.to_number, from_number=forward.from_number, body=forward.body, media_urls=forward.media_urls)
        sid = carrier.text_send(to=forward.to_number, from_number=forward.from_number, body=forward.body,
                                media_urls=list(forward.media_urls), status_url=status_url)
    except TextRefused as exc:
        log.warning("forward %s: not sent: %s", forward.pk, exc)
        return _forward_fail(forward, code="opt_out")
    except CarrierError as exc:
        if exc.code in RETRY_CODES and attempt < FORWARD_MAX_ATTEMPTS:
            with transaction.atomic():
                due = _retry_schedule(FORWARD_TASK, (forward.pk, attempt + 1), attempt=attempt, what=f"text forward {forward.pk}")
                # status_at: when the next try is due (text_forwards_requeue reads it to find a retry whose task was lost).
                TextMessage.objects.filter(pk=forward.pk, status=TextStatus.SENDING).update(status=TextStatus.QUEUED, status_at=due)
            log.info("forward %s: the carrier failed (%s), try %s at %s", forward.pk, exc, attempt + 1, due.isoformat())
            forward.status = TextStatus.QUEUED
            return forward
        log.warning("forward %s: not sent after %s tries: %s", forward.pk, attempt, exc)
        return _forward_fail(forward, code=_SHORT_CODES.get(exc.code, exc.code))
    return _forward_accepted(forward, sid)


#: How far before a dead worker's claim a text at the carrier may be (clocks of the carrier and ours differ).
CARRIER_CLOCK_SLACK = timedelta(minutes=5)


def _forward_sent_before(forward: TextMessage, *, carrier: Carrier, status_url: str, since: datetime) -> str:
    """The carrier's sid of ``forward`` if a worker that died had it sent already, else ''. The carrier's candidates
    (same line, same body, or the same status URL, from a little before the dead claim) that another of our texts
    holds already are not this one."""
    candidates = carrier.text_sent_find(to=forward.to_number, from_number=forward.from_number, body=forward.body,
                                        status_url=status_url, since=since - CARRIER_CLOCK_SLACK)
    known = set(TextMessage.objects.filter(message_sid__in=candidates).values_list("message_sid", flat=True)) if candidates else set()
    return next((sid for sid in candidates if sid not in known), "")


def _forward_accepted(forward: TextMessage, sid: str) -> TextMessage:
    """The carrier accepted ``forward`` as ``sid``: it is sent (unless its status callback came first and moved it on
    already), with its ``message.sent`` webhooks."""
    with transaction.atomic():
        # Conditional: a status callback that came first has named the sid and moved the status on already.
        try:
            with transaction.atomic():
                TextMessage.objects.filter(pk=forward.pk, message_sid=forward.message_sid).update(message_sid=sid[:64])
        except IntegrityError:
            # Another forward holds the sid: a dead worker's retry took this text at Twilio for its twin (same line,
            # same words). Each went out once; this one stays sent under its pending sid.
            log.warning("forward %s: the carrier's sid %s is another forward's already; kept as sent without it", forward.pk, sid)
        TextMessage.objects.filter(pk=forward.pk, status=TextStatus.SENDING).update(status=TextStatus.SENT, status_at=timezone.now())
        forward.refresh_from_db()
        text_webhooks_queue(text=forward, event=WebhookEvent.MESSAGE_SENT)
    return forward


def forward_lease() -> timedelta:
    """How long a claimed forward keeps others off: longer than a worker may spend on it (django-q2 stops a task after
    the cluster's ``timeout``)."""
    return timedelta(seconds=float(settings.Q_CLUSTER.get("timeout") or 60) + 30)


FORWARD_REQUEUE_AFTER = timedelta(minutes=2)
FORWARD_REQUEUE_BATCH = 500


def text_forwards_requeue(*, now: datetime | None = None) -> int:
    """Queue again the forwards (SMS and email) left unsent for ``FORWARD_REQUEUE_AFTER`` past their due time: their
    task was lost (a cluster killed hard with the Redis broker, a retry's Schedule lost) or the worker died mid-try
    (its lease ran out). An SMS forward's tries start over; an email forward's count on (``attempts``). Safe at any
    time and on several clusters: a task queued twice sends once (the claims in ``text_forward_send`` and
    ``text_email_forward_send``). Scheduled every minute; returns how many were queued."""
    now = now or timezone.now()
    limit = now - FORWARD_REQUEUE_AFTER
    lost = (
        _forward_rows().annotate(due=Coalesce("status_at", "created_at"))
        .filter(Q(status=TextStatus.QUEUED, due__lte=limit) | Q(status=TextStatus.SENDING, status_at__lt=limit - forward_lease()))
        .order_by("created_at").values_list("pk", flat=True)[:FORWARD_REQUEUE_BATCH]
    )
    ids = list(lost)
    for pk in ids:
        _task_queue(FORWARD_TASK, pk, 1)
    # An email's next_attempt_at is when it is due (queued) or when its worker's lease ends (sending).
    emails = list(
        TextEmailForward.objects.filter(status__in=[EmailForwardStatus.QUEUED, EmailForwardStatus.SENDING], next_attempt_at__lte=limit)
        .order_by("next_attempt_at").values_list("pk", "attempts")[:FORWARD_REQUEUE_BATCH]
    )
    for pk, attempts in emails:
        _task_queue(EMAIL_FORWARD_TASK, pk, attempts + 1)
    return len(ids) + len(emails)


def _forward_fail(forward: TextMessage, *, code: str) -> TextMessage:
    TextMessage.objects.filter(pk=forward.pk, status=TextStatus.SENDING).update(status=TextStatus.FAILED, error_code=code[:10])
    forward.refresh_from_db()
    return forward


def text_forward_email_queue(*, text: TextMessage, address: str) -> TextEmailForward:
    """Keep the email of ``text`` to ``address`` (one record per pair: a repeated call changes nothing) and queue its
    task after commit (``text_email_forward_send``)."""
    try:
        with transaction.atomic():
            forward, created = TextEmailForward.objects.get_or_create(text=text, address=address[:254])
    except IntegrityError:  # a racing delivery of the same text made it first
        return TextEmailForward.objects.get(text=text, address=address[:254])
    if created:
        transaction.on_commit(functools.partial(_task_queue, EMAIL_FORWARD_TASK, forward.pk, 1))
    return forward


def _email_message_id(forward: TextEmailForward) -> str:
    """One Message-ID per email forward, the same on every try: a mail system that keeps Message-IDs (Gmail does)
    shows a copy sent twice (a worker died after the server took it) once."""
    domain = settings.DEFAULT_FROM_EMAIL.rpartition("@")[2].strip(" >") or "calltrack.invalid"
    return f"<calltrack-text-email-{forward.pk}@{domain}>"


def text_email_forward_send(*, forward_id: int) -> TextEmailForward | None:
    """Email a text to its forward's address (the task's work). Claimed by a conditional UPDATE (queued, or sending
    past its lease -> sending, leased for ``forward_lease()``, one more attempt), so a task run twice or by two
    workers sends once. ``sent`` once the mail backend returned; a failure puts it back to queued with backoff (a
    Schedule) up to FORWARD_MAX_ATTEMPTS tries, then ``failed``. A worker that dies after the mail server took the
    email but before marking it leaves it ``sending``: after its lease it is sent again (the mail backend cannot be
    asked what it sent), with the same Message-ID. None when there is nothing to send."""
    now = timezone.now()
    lease_end = now + forward_lease()
    claimable = Q(status=EmailForwardStatus.QUEUED) | Q(status=EmailForwardStatus.SENDING, next_attempt_at__lt=now)
    if not TextEmailForward.objects.filter(claimable, pk=forward_id).update(
            status=EmailForwardStatus.SENDING, next_attempt_at=lease_end, attempts=F("attempts") + 1):
        return None
    forward = TextEmailForward.objects.select_related("text__campaign", "text__source").get(pk=forward_id)
    mine = TextEmailForward.objects.filter(pk=forward.pk, status=EmailForwardStatus.SENDING, next_attempt_at=lease_end)  # our claim
    text = forward.text
    # One line: a header never holds a line break (Django refuses to send one), whatever a sender's number held.
    subject = " ".join(f"Text from {text.from_number} to {text.to_number}".split())[:200]
    lines = [text.body, "", *text.media_urls, f"Campaign: {text.campaign or '-'}", f"Source: {text.source or '-'}"]
    email = EmailMessage(subject, "\n".join(lines), settings.DEFAULT_FROM_EMAIL, [forward.address],
                         headers={"Message-ID": _email_message_id(forward)})
    try:
        email.send()
    except Exception as exc:  # noqa: BLE001 - any mail server failure is worth another try
        error = f"{type(exc).__name__}: {exc}"[:300]
        if forward.attempts < FORWARD_MAX_ATTEMPTS:
            with transaction.atomic():
                due = _retry_schedule(EMAIL_FORWARD_TASK, (forward.pk, forward.attempts + 1), attempt=forward.attempts,
                                      what=f"text email {forward.pk}")
                mine.update(status=EmailForwardStatus.QUEUED, next_attempt_at=due, last_error=error)
            log.info("text %s: not emailed to %s (%s), try %s at %s", text.pk, forward.address, error, forward.attempts + 1, due.isoformat())
        else:
            mine.update(status=EmailForwardStatus.FAILED, last_error=error)
            log.warning("text %s: not emailed to %s after %s tries: %s", text.pk, forward.address, forward.attempts, error)
    else:
        if not mine.update(status=EmailForwardStatus.SENT, sent_at=timezone.now(), last_error=""):
            log.warning("text email %s: sent after its lease ran out (another worker may send it too)", forward.pk)
    forward.refresh_from_db()
    return forward


def text_forward_email_send(*, text_id: int, address: str) -> TextEmailForward | None:
    """The email task queued before email forwards had their own record (``text_email_task(text_id, address)``, a
    task or Schedule still waiting at the upgrade): its record is made now (or found), then sent once as any."""
    text = TextMessage.objects.filter(pk=text_id).first()
    if text is None:
        return None
    try:
        with transaction.atomic():
            forward, _ = TextEmailForward.objects.get_or_create(text=text, address=address[:254])
    except IntegrityError:
        forward = TextEmailForward.objects.get(text=text, address=address[:254])
    return text_email_forward_send(forward_id=forward.pk)
