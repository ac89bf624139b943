"""An incoming text (Twilio's messaging webhook): stored once per MessageSid, credited exactly as a call to the same
number at the same moment (``routing.services.attribution``), then answered as its campaign's text routing says:
the carriers' keywords (STOP, START, HELP), forwards (a handler's number, an email address), the auto-reply
(another one when closed) and the conversion."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from django.core import signing
from django.db import IntegrityError, transaction
from django.utils import timezone

from calltrack import hours as hours_rules
from calltrack import phone
from calltrack import tags as tag_rules
from calltrack.numbers.models import TrackingNumber
from calltrack.numbers.services import texts as outbound
from routing import decision as dec
from routing import geo, tagging, twiml
from routing.services.attribution import credit_for
from routing.services.common import Links, ParamError, is_real_number
from routing.services.config import campaign_config
from routing.store import voice as store
from tracking.models import Call, TextConversion, TextMessage, TextPurpose, TextRoute, TextStatus, WebhookEvent
from tracking.models.texts import MAX_BODY, MAX_MEDIA, body_clean
from tracking.services.webhooks import text_webhooks_queue

log = logging.getLogger("calltrack.texts")

# The keywords US carriers and Twilio act on (a body that is the keyword alone, any case).
STOP_WORDS = frozenset({"STOP", "STOPALL", "STOP ALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "OPTOUT", "REVOKE"})
START_WORDS = frozenset({"START", "YES", "UNSTOP"})
HELP_WORDS = frozenset({"HELP", "INFO"})
KEYWORD_TAG = "text_keyword"
SID = re.compile(r"^[A-Za-z0-9]{2,64}$")
#: ``simulate_text --test`` marks its text with this parameter: a token signed with SECRET_KEY for that MessageSid, as
#: ``simulate_call --test`` marks a call (routing.services.common.TEST_CALL_PARAM). Twilio never sends it.
TEST_TEXT_PARAM = "CalltrackTestText"
_TEST_TEXT_SALT = "calltrack.routing.test-text"
TEST_TEXT_MAX_AGE = 3600  # seconds a token stays good: the simulator posts it at once


def text_test_marker(*, message_sid: str) -> str:
    """The ``TEST_TEXT_PARAM`` value that marks the incoming text ``message_sid`` as a test text."""
    return signing.dumps({"sid": message_sid}, salt=_TEST_TEXT_SALT, compress=False)


def _test_text_read(token: str, message_sid: str) -> bool:
    """Whether ``token`` marks ``message_sid`` as a test text; a token that is not ours, expired or made for another
    text is ignored (with a warning): the text is then the real text it is."""
    try:
        data = signing.loads(token[:500], salt=_TEST_TEXT_SALT, max_age=TEST_TEXT_MAX_AGE)
        if not isinstance(data, dict) or data.get("sid") != message_sid:
            raise signing.BadSignature("made for another text")
    except (signing.BadSignature, ValueError, TypeError) as exc:
        log.warning("MessageSid %r: ignored a test text marker (%s)", message_sid, exc)
        return False
    return True


@dataclass(frozen=True)
class IncomingText:
    """The parameters of Twilio's messaging webhook we use."""

    message_sid: str
    sender: str
    to: str
    body: str = ""
    media_urls: tuple[str, ...] = ()
    from_city: str = ""
    from_state: str = ""
    from_zip: str = ""
    from_country: str = ""
    test: bool = False  # a test text (``TEST_TEXT_PARAM``): left out of the figures, converts nothing, sends no webhook

    @classmethod
    def from_params(cls, params: Mapping[str, str]) -> IncomingText:
        sid = (params.get("MessageSid") or params.get("SmsSid") or "").strip()
        to = (params.get("To") or "").strip()
        sender = (params.get("From") or "").strip()
        missing = [name for name, value in (("MessageSid", sid), ("To", to), ("From", sender)) if not value]
        if missing:
            raise ParamError(f"missing parameter {', '.join(missing)}")
        if not SID.match(sid):
            raise ParamError("MessageSid is not a message SID")
        try:
            called = phone.to_e164(to[:64])
        except phone.InvalidPhoneNumber as exc:
            raise ParamError(f"To: {exc}") from None
        raw_count = (params.get("NumMedia") or "0").strip()
        count = min(int(raw_count), MAX_MEDIA) if raw_count.isascii() and raw_count.isdigit() and len(raw_count) < 4 else 0
        media = tuple(url for url in (params.get(f"MediaUrl{i}", "").strip() for i in range(count))
                      if url.startswith("https://") and len(url) <= 1000)
        return cls(
            message_sid=sid, sender=phone.to_e164_or_none(sender[:64]) or body_clean(sender, 32), to=called,
            body=body_clean(params.get("Body", ""), MAX_BODY), media_urls=media,
            from_city=body_clean(params.get("FromCity", ""), 100), from_state=body_clean(params.get("FromState", ""), 100),
            from_zip=body_clean(params.get("FromZip", ""), 20), from_country=body_clean(params.get("FromCountry", ""), 2),
            test=_test_text_read(params[TEST_TEXT_PARAM], sid) if params.get(TEST_TEXT_PARAM) else False,
        )


def keyword_of(body: str) -> str:
    """The carriers' keyword a body is ('STOP', 'START', 'HELP'), else ''."""
    word = " ".join(body.split()).upper()
    if word in STOP_WORDS:
        return "STOP"
    if word in START_WORDS:
        return "START"
    if word in HELP_WORDS:
        return "HELP"
    return ""


def text_receive(*, incoming: IncomingText, at: datetime | None = None) -> tuple[TextMessage, TrackingNumber | None, bool]:
    """Store the text Twilio announced, credited like a call to the same number at ``at``; returns it, its tracking
    number and whether it is new. Idempotent on MessageSid: a retried or racing delivery finds the stored text (the
    unique index decides, in a savepoint) and changes nothing."""
    existing = TextMessage.objects.filter(message_sid=incoming.message_sid).first()
    if existing is not None:
        return existing, existing.tracking_number, False
    at = at or timezone.now()
    tracking_number = store.tracking_number_load(incoming.to, caller="").tracking_number
    credit = credit_for(tracking_number, at=at)
    where = geo.caller_geo(number=incoming.sender, city=incoming.from_city, state=incoming.from_state,
                           zip_code=incoming.from_zip, country=incoming.from_country)
    extra: dict[str, str] = {}
    if credit.campaign is not None:
        tagged = tagging.hours_tags(campaign_config(credit.campaign).hours_tags, at)
        extra.update(tagged.tags)
    if credit.session is not None and credit.session.destination_number:
        extra[tag_rules.DESTINATION] = tag_rules.lookup_value(tag_rules.DESTINATION, credit.session.destination_number)
    keyword = keyword_of(incoming.body)
    if keyword:
        extra[KEYWORD_TAG] = keyword.lower()
    tags = dec.call_tags(caller_state=where.state, caller_zip=where.zip, caller_city=where.city, caller_country=where.country,
                         source=credit.source.source_id if credit.source else "", marketing_data=credit.marketing, extra=extra)
    text = TextMessage(
        account_id=tracking_number.account_id if tracking_number is not None else None,
        message_sid=incoming.message_sid, from_number=incoming.sender, to_number=incoming.to, contact_number=incoming.sender,
        body=incoming.body, media_urls=list(incoming.media_urls), status=TextStatus.RECEIVED, tracking_number=tracking_number,
        campaign=credit.campaign, source=credit.source, session=credit.session, caller_city=where.city[:100],
        caller_state=where.state[:100], caller_zip=where.zip[:20], caller_country=where.country[:2], tags=tags,
        marketing_data=credit.marketing, landing_page=credit.landing[:2000], referrer=credit.referrer[:2000],
        visitor_id=credit.visitor[:64], created_at=at, is_test=incoming.test,
    )
    try:
        with transaction.atomic():
            text.save(force_insert=True)
    except IntegrityError:
        return TextMessage.objects.get(message_sid=incoming.message_sid), tracking_number, False
    return text, tracking_number, True


def text_route_of(text: TextMessage) -> TextRoute | None:
    if text.campaign_id is None:
        return None
    return TextRoute.objects.select_related("forward_handler__receiving_number", "campaign").filter(campaign_id=text.campaign_id).first()


def text_route_open(route: TextRoute, at: datetime) -> bool:
    """Whether the route's business hours are open at ``at`` (no hours: always), in its own time zone."""
    hours = route.business_hours or {}
    return hours_rules.is_open(hours, route.timezone, at, always_open=not hours)


def auto_reply_render(template: str, *, text: TextMessage) -> str:
    """The auto-reply with its tokens filled: {campaign}, {contact}, {number}, {city}, {state}. An unknown or broken
    token is left as written (an operator's typo never costs the contact the answer)."""
    values = {"campaign": str(text.campaign or ""), "contact": text.contact_number, "number": text.to_number,
              "city": text.caller_city, "state": text.caller_state}
    return re.sub(r"\{(\w+)\}", lambda m: values.get(m[1], m[0]), template)


def text_answer(*, text: TextMessage, created: bool, links: Links, at: datetime | None = None) -> str:
    """The messaging webhook's TwiML for ``text``, doing what its campaign's text routing says, then the campaign's
    ``message.received`` webhooks (queued on commit, with the conversion decided). A repeated delivery (``created``
    False) answers the empty ``<Response/>`` and sends nothing again."""
    if not created:
        return twiml.messages()
    answer = _answer(text, links, at=at)
    text_webhooks_queue(text=text, event=WebhookEvent.MESSAGE_RECEIVED)
    return answer


def _answer(text: TextMessage, links: Links, *, at: datetime | None) -> str:
    at = at or text.created_at
    keyword = keyword_of(text.body)
    contact, ours = text.contact_number, text.to_number
    if keyword == "STOP":
        outbound.text_opt_out_record(contact_number=contact, our_number=ours, keyword=" ".join(text.body.split()).upper(),
                                      account_id=text.account_id)
        return twiml.messages()  # the carrier confirms the opt-out itself
    if keyword == "START":
        outbound.text_opt_in_record(contact_number=contact, our_number=ours)
        return twiml.messages()
    route = text_route_of(text)
    if route is None or not route.campaign.enabled:
        return twiml.messages()
    if keyword == "HELP":
        if not route.help_reply.strip():
            return twiml.messages()
        return _reply(text, route.help_reply, TextPurpose.KEYWORD, links)
    _conversion_decide(text, route, at=at)
    if route.forward_handler is not None:
        outbound.text_forward_to_handler(text=text, handler=route.forward_handler)
    if route.forward_email:
        outbound.text_forward_email_queue(text=text, address=route.forward_email)
    template = route.auto_reply if text_route_open(route, at) else (route.auto_reply_closed or route.auto_reply)
    if not template.strip():
        return twiml.messages()
    return _reply(text, auto_reply_render(template, text=text), TextPurpose.AUTO_REPLY, links)


def _reply(text: TextMessage, body: str, purpose: str, links: Links) -> str:
    """A ``<Message>`` back to the contact, kept as a pending outbound text (its status callback names its sid);
    nothing when the contact opted out or the body is empty."""
    if not is_real_number(text.contact_number):
        return twiml.messages()
    try:
        reply = outbound.text_pending_create(to=text.contact_number, from_number=text.to_number, body=body, purpose=purpose,
                                             thread=outbound.Thread(text))
    except outbound.TextRefused as exc:
        log.info("MessageSid %r: no %s (%s)", text.message_sid, purpose, exc)
        return twiml.messages()
    return twiml.messages(twiml.TextReply(reply.body, links.url("/sms/status", text=reply.pk)))


def _conversion_decide(text: TextMessage, route: TextRoute, *, at: datetime) -> None:
    """The campaign's text conversion: the first text from a contact new to the campaign (no earlier text nor call
    from the number to it), or a text holding the keyword. Test texts never convert."""
    if route.convert_on == TextConversion.NEVER or text.is_test or text.campaign_id is None:
        return
    if route.convert_on == TextConversion.KEYWORD:
        word = route.convert_keyword.strip().lower()
        if not word or not re.search(rf"(?<!\w){re.escape(word)}(?!\w)", text.body.lower()):
            return
        reason = f"the text holds the keyword {word!r}"
    else:
        earlier_text = TextMessage.objects.filter(contact_number=text.contact_number, campaign_id=text.campaign_id,
                                                  created_at__lte=at).exclude(pk=text.pk).exists()
        if earlier_text or Call.objects.filter(caller_number=text.contact_number, campaign_id=text.campaign_id, started_at__lt=at).exists():
            return
        reason = "the first text from a new contact"
    text.converted, text.converted_at, text.conversion_reason = True, at, reason
    text.revenue, text.payout = route.revenue, route.payout
    text.save(update_fields=["converted", "converted_at", "conversion_reason", "revenue", "payout"])
