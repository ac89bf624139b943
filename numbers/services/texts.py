"""Texts we send from our numbers (replies, auto-replies, forwards) and what the carrier says of them afterwards;
the opt-outs that stop them (issue 29).

Every outbound text goes through ``text_send`` (or, for an answer written into the messaging webhook's TwiML,
``text_pending_create``): one place checks the opt-outs, so nothing is ever sent to a contact who texted STOP."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.utils import timezone

from calltrack.carriers import sms_webhook_urls
from calltrack.numbers.providers import Carrier, CarrierError, get_carrier
from tracking.models import Handler, TextDirection, TextMessage, TextOptOut, TextPurpose, TextStatus, WebhookEvent
from tracking.models.texts import MAX_BODY, MAX_MEDIA, body_clean
from tracking.services.webhooks import text_webhooks_queue

log = logging.getLogger("calltrack.texts")

# The order a message's statuses come in; a late callback never takes a text back to an earlier one.
_RANK: dict[str, int] = {TextStatus.ACCEPTED: 0, TextStatus.QUEUED: 1, TextStatus.SENDING: 2, TextStatus.SENT: 3,
         TextStatus.DELIVERED: 4, TextStatus.UNDELIVERED: 4, TextStatus.FAILED: 4, TextStatus.READ: 5}
PENDING_PREFIX = "pending:"  # the sid of a text written into TwiML until its status callback tells the carrier's


class TextRefused(Exception):
    """A text we will not send; ``str()`` says why."""


def text_opted_out(*, contact_number: str, our_number: str) -> bool:
    return TextOptOut.objects.filter(contact_number=contact_number, our_number=our_number).exists()


def text_opt_out_record(*, contact_number: str, our_number: str, keyword: str, at: datetime | None = None) -> None:
    """Keep that ``contact_number`` opted out of ``our_number`` (idempotent; two deliveries racing: the unique pair
    decides, the second changes nothing)."""
    try:
        with transaction.atomic():
            TextOptOut.objects.get_or_create(contact_number=contact_number, our_number=our_number,
                                             defaults={"keyword": keyword[:20], "opted_out_at": at or timezone.now()})
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
        return {"tracking_number_id": t.tracking_number_id, "campaign_id": t.campaign_id, "source_id": t.source_id,
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
    carrier = carrier or get_carrier()
    sid = carrier.text_send(to=to, from_number=from_number, body=body, media_urls=media, status_url=sms_webhook_urls()[1])
    text = TextMessage.objects.create(
        message_sid=sid[:64], direction=TextDirection.OUTBOUND, purpose=purpose, from_number=from_number, to_number=to,
        contact_number=contact, body=body, media_urls=media, status=TextStatus.QUEUED, handler=handler, sent_by=sent_by,
        **thread.fields(),
    )
    text_webhooks_queue(text=text, event=WebhookEvent.MESSAGE_SENT)
    return text


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
                       at: datetime | None = None) -> TextMessage | None:
    """The carrier's status callback for one of our texts: its status moves forward only (a late ``sent`` after
    ``delivered`` changes nothing), under the text's row lock. A text answered in TwiML (``text_id``) learns its
    carrier sid here. None when the text is not ours."""
    at = at or timezone.now()
    with transaction.atomic():
        rows = TextMessage.objects.select_for_update()
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


def text_forward_to_handler(*, text: TextMessage, handler: Handler, carrier: Carrier | None = None) -> TextMessage | None:
    """Send ``text`` on to the handler's receiving number, from the tracking number it came to. A carrier's refusal
    is logged and costs the contact's text nothing (None)."""
    line = handler.receiving_number.number if handler.receiving_number_id else ""
    if not line:
        return None
    body = f"Text from {text.from_number}: {text.body}"
    # The contact's text was routed to this handler (its collaborators see it; its postback may convert it).
    if text.handler_id != handler.pk:
        text.handler = handler
        text.save(update_fields=["handler"])
    try:
        return text_send(to=line, from_number=text.to_number, body=body, media_urls=text.media_urls, purpose=TextPurpose.FORWARD,
                         thread=Thread(text), handler=handler, carrier=carrier)
    except (CarrierError, TextRefused) as exc:
        log.warning("MessageSid %r: not forwarded to handler %s: %s", text.message_sid, handler.pk, exc)
        return None
