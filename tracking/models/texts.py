"""Text messages on the tracking numbers: each one stored and credited like a call to the same number at the same
moment (issue 29), the opt-outs the carriers' keywords ask us to keep, and a campaign's routing for texts."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from calltrack import hours as hours_rules
from calltrack.account_fields import account_field

MAX_BODY = 1600  # Twilio's longest message body (10 segments); a longer one is cut, never refused
MAX_MEDIA = 10  # Twilio sends at most ten MediaUrlN


class TextDirection(models.TextChoices):
    INBOUND = "inbound", _("Received")
    OUTBOUND = "outbound", _("Sent")


class TextStatus(models.TextChoices):
    """Twilio's message statuses (``SmsStatus``/``MessageStatus``) that calltrack keeps."""

    RECEIVED = "received", _("Received")
    ACCEPTED = "accepted", _("Accepted")
    QUEUED = "queued", _("Queued")
    SENDING = "sending", _("Sending")
    SENT = "sent", _("Sent")
    DELIVERED = "delivered", _("Delivered")
    UNDELIVERED = "undelivered", _("Undelivered")
    FAILED = "failed", _("Failed")
    READ = "read", _("Read")

    @classmethod
    def final(cls) -> frozenset[str]:
        return frozenset({cls.DELIVERED, cls.UNDELIVERED, cls.FAILED, cls.READ, cls.RECEIVED})


class TextPurpose(models.TextChoices):
    """Why a text exists: a contact's text, or which of ours answered it."""

    CONTACT = "contact", _("From the contact")
    REPLY = "reply", _("Operator's reply")
    AUTO_REPLY = "auto_reply", _("Auto-reply")
    FORWARD = "forward", _("Forward")
    KEYWORD = "keyword", _("Keyword answer")


#: The sid of an outbound text the carrier has not named yet: a forward waiting for its task, or an answer written
#: into TwiML until its first status callback.
PENDING_PREFIX = "pending:"


def forward_waiting_q() -> models.Q:
    """Forwards to a handler the carrier has not accepted yet: queued for (or held by) a worker."""
    return models.Q(direction=TextDirection.OUTBOUND, purpose=TextPurpose.FORWARD, message_sid__startswith=PENDING_PREFIX,
                    status__in=[TextStatus.QUEUED, TextStatus.SENDING])


def outbound_failed_q() -> models.Q:
    """Our texts that did not go out: the carrier failed them, or we gave up (a forward's last try, an opt-out)."""
    return models.Q(direction=TextDirection.OUTBOUND, status=TextStatus.FAILED)


def outbound_sent_q() -> models.Q:
    """Our texts the carrier took (sent, delivered, undelivered, or in its queue), not those still waiting for a
    worker nor the failed ones: what "texts sent" counts."""
    return models.Q(direction=TextDirection.OUTBOUND) & ~forward_waiting_q() & ~outbound_failed_q()


class TextMessageQuerySet(models.QuerySet):
    def conversation(self, contact_number: str) -> TextMessageQuerySet:
        """The texts to and from ``contact_number``, oldest first (forwards to handlers are not the contact's)."""
        return self.filter(contact_number=contact_number).exclude(purpose=TextPurpose.FORWARD).order_by("created_at", "pk")


class TextMessage(models.Model):
    """One text on one of our tracking numbers, in or out. Inbound texts carry the credit a call to the same number at
    the same moment would get (campaign, source, the DNI session in its window with its marketing data, caller geo,
    tags); outbound ones copy their conversation's."""

    account = account_field(null=True, db_index=False)  # null: a number no account holds

    message_sid = models.CharField("MessageSid", max_length=64, unique=True, help_text=_("The carrier's id of the message."))
    direction = models.CharField(max_length=10, choices=TextDirection.choices, default=TextDirection.INBOUND)
    purpose = models.CharField(max_length=12, choices=TextPurpose.choices, default=TextPurpose.CONTACT)
    from_number = models.CharField(max_length=32, help_text=_("E.164 when it could be read; as sent otherwise."))
    to_number = models.CharField(max_length=32)
    contact_number = models.CharField(
        max_length=32, help_text=_("The other party: the sender of an inbound text, the recipient of an outbound one."))
    body = models.TextField(blank=True)
    media_urls = models.JSONField(default=list, blank=True, help_text=_("The MMS media's URLs at the carrier."))
    status = models.CharField(max_length=12, choices=TextStatus.choices, default=TextStatus.RECEIVED, db_index=True)
    error_code = models.CharField(max_length=10, blank=True, help_text=_("The carrier's error code for an undelivered text."))
    tracking_number = models.ForeignKey("numbers.TrackingNumber", null=True, blank=True, on_delete=models.SET_NULL, related_name="texts")
    campaign = models.ForeignKey("tracking.Campaign", null=True, blank=True, on_delete=models.SET_NULL, related_name="texts", db_index=False)
    source = models.ForeignKey("tracking.Source", verbose_name=pgettext_lazy("party", "source"), null=True, blank=True,
                               on_delete=models.SET_NULL, related_name="texts", db_index=False)
    handler = models.ForeignKey("tracking.Handler", verbose_name=pgettext_lazy("party", "handler"), null=True, blank=True,
                                on_delete=models.SET_NULL, related_name="texts", help_text=_("The handler a text was forwarded to."))
    session = models.ForeignKey("numbers.NumberSession", null=True, blank=True, on_delete=models.SET_NULL, related_name="texts")
    sent_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                                help_text=_("The operator who wrote a reply."))
    caller_city = models.CharField(max_length=100, blank=True)
    caller_state = models.CharField(max_length=100, blank=True)
    caller_zip = models.CharField(max_length=20, blank=True)
    caller_country = models.CharField(max_length=2, blank=True)
    tags = models.JSONField(default=dict, blank=True, help_text=_("The text's tags: caller geo, marketing data, keyword."))
    marketing_data = models.JSONField(default=dict, blank=True, help_text=_("UTM parameters, click ids and custom data of the visitor or static number."))
    landing_page = models.URLField(max_length=2000, blank=True)
    referrer = models.URLField(max_length=2000, blank=True)
    visitor_id = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    status_at = models.DateTimeField(null=True, blank=True, help_text=_("When the carrier last reported the status."))
    converted = models.BooleanField(default=False, db_index=True)
    converted_at = models.DateTimeField(null=True, blank=True)
    conversion_reason = models.CharField(max_length=300, blank=True)
    revenue = models.DecimalField(max_digits=10, decimal_places=2, default=Decimal("0"))
    payout = models.DecimalField(max_digits=10, decimal_places=2, default=Decimal("0"))
    is_test = models.BooleanField(default=False, help_text=_("Played by simulate_text --test: left out of the reports."))

    objects = TextMessageQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("text")
        verbose_name_plural = _("texts")
        indexes = [
            models.Index(fields=["contact_number", "created_at"]),
            models.Index(fields=["campaign", "created_at"]),
            models.Index(fields=["source", "created_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.from_number} -> {self.to_number} ({self.message_sid})"

    @property
    def margin(self) -> Decimal:
        return self.revenue - self.payout


class TextOptOut(models.Model):
    """A contact who texted STOP (or another opt-out keyword) to one of our numbers: nothing more is sent to them from
    it until they text START. Kept per pair, as the carriers keep it."""

    account = account_field()
    contact_number = models.CharField(max_length=32)
    our_number = models.CharField(max_length=32, help_text=_("The tracking number the contact opted out of."))
    keyword = models.CharField(max_length=20, blank=True)
    opted_out_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["contact_number", "our_number"], name="text_opt_out_pair")]

    def __str__(self) -> str:
        return f"{self.contact_number} opted out of {self.our_number}"


class EmailForwardStatus(models.TextChoices):
    QUEUED = "queued", _("Queued")
    SENDING = "sending", _("Sending")
    SENT = "sent", _("Sent")
    FAILED = "failed", _("Failed")


class TextEmailForward(models.Model):
    """The email of one text to one address (a campaign's text routing ``forward_email``): its own record, so it is
    sent once however often its task runs, and a lost task is found again. ``queued`` until a worker claims it
    (``sending``, leased until ``next_attempt_at``), ``sent`` once the mail backend returned, ``failed`` after the
    last try. ``next_attempt_at`` is when a queued email is due, or when a sending one's lease ends."""

    text = models.ForeignKey(TextMessage, on_delete=models.CASCADE, related_name="email_forwards")
    address = models.EmailField(help_text=_("Where the text was emailed (the route's address when it came in)."))
    status = models.CharField(max_length=10, choices=EmailForwardStatus.choices, default=EmailForwardStatus.QUEUED)
    attempts = models.PositiveSmallIntegerField(default=0, help_text=_("Tries started (a worker's claim counts one)."))
    last_error = models.CharField(max_length=300, blank=True, help_text=_("The mail backend's last failure."))
    next_attempt_at = models.DateTimeField(default=timezone.now)
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True, help_text=_("When the mail backend accepted it."))

    class Meta:
        verbose_name = _("text email forward")
        constraints = [models.UniqueConstraint(fields=["text", "address"], name="text_email_forward_once")]
        # The requeue sweep's read: the queued or sending ones past a moment (a small set: sent ones are most rows).
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="text_email_fwd_due")]

    def __str__(self) -> str:
        return f"text {self.text_id} to {self.address} ({self.status})"


class TextConversion(models.TextChoices):
    NEVER = "never", _("Never")
    FIRST_TEXT = "first_text", _("The first text from a new contact")
    KEYWORD = "keyword", _("A text holding the keyword")


class TextRoute(models.Model):
    """What a campaign does with the texts to its numbers: forward (to a handler's number or an email address), an
    auto-reply (another one outside the business hours), the HELP answer, and when a text converts."""

    campaign = models.OneToOneField("tracking.Campaign", on_delete=models.CASCADE, related_name="text_route",
                                    help_text=_("The campaign whose tracking numbers' texts this routes."))
    forward_handler = models.ForeignKey(
        "tracking.Handler", verbose_name=pgettext_lazy("party", "forward to handler"), null=True, blank=True,
        on_delete=models.SET_NULL, related_name="+",
        help_text=_("Each text is sent on to this handler's receiving number, from the tracking number it came to."))
    forward_email = models.EmailField(blank=True, help_text=_("Each text is also emailed to this address."))
    auto_reply = models.TextField(
        blank=True, max_length=MAX_BODY,
        help_text=_("Answered to each text while open. Tokens: {campaign}, {contact}, {number}, {city}, {state}. Empty: no answer."))
    auto_reply_closed = models.TextField(
        blank=True, max_length=MAX_BODY, help_text=_("Answered outside the business hours instead (empty: the same auto-reply)."))
    help_reply = models.TextField(blank=True, max_length=MAX_BODY, help_text=_("Answered to HELP (empty: the carrier's own answer)."))
    timezone = models.CharField(max_length=64, default="America/New_York", help_text=_("IANA time zone the business hours are read in."))
    business_hours = models.JSONField(
        default=dict, blank=True,
        help_text=_('Open hours for the auto-reply, e.g. {"mon": ["09:00-17:00"]}. Empty: always open.'))
    convert_on = models.CharField(max_length=12, choices=TextConversion.choices, default=TextConversion.NEVER,
                                  help_text=_("When a text counts as a conversion."))
    convert_keyword = models.CharField(max_length=40, blank=True, help_text=_("The word a converting text holds (any case)."))
    revenue = models.DecimalField(max_digits=10, decimal_places=2, default=Decimal("0"), validators=[MinValueValidator(Decimal("0"))],
                                  help_text=_("Earned for a converting text."))
    payout = models.DecimalField(max_digits=10, decimal_places=2, default=Decimal("0"), validators=[MinValueValidator(Decimal("0"))],
                                 help_text=_("Paid to the source for a converting text."))

    class Meta:
        verbose_name = _("text routing")
        verbose_name_plural = _("text routing")

    def __str__(self) -> str:
        return f"texts of {self.campaign}"

    def clean(self) -> None:
        errors: dict[str, str] = {}
        try:
            hours_rules.zone(self.timezone)
        except hours_rules.HoursError as exc:
            errors["timezone"] = str(exc)
        try:
            self.business_hours = hours_rules.validate(self.business_hours or {})
        except hours_rules.HoursError as exc:
            errors["business_hours"] = str(exc)
        if self.convert_on == TextConversion.KEYWORD and not self.convert_keyword.strip():
            errors["convert_keyword"] = "Give the keyword a converting text holds."
        if errors:
            raise ValidationError(errors)


_XML_INVALID = {c for c in range(32) if c not in (9, 10, 13)} | {0xFFFE, 0xFFFF}


def body_clean(text: str, limit: int = MAX_BODY) -> str:
    """Text we can store on every database and write into TwiML: no NUL or other control character XML refuses, no
    lone surrogate (odd Unicode a form may carry), at most ``limit`` characters (a longer body is cut, never
    refused)."""
    text = (text or "")[: limit * 2]
    if not text.isascii() or any(ord(ch) < 32 for ch in text):
        text = "".join(ch for ch in text if ord(ch) not in _XML_INVALID and not 0xD800 <= ord(ch) <= 0xDFFF)
    return text[:limit]
