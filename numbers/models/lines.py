"""Receiving numbers (lines we forward to) and tracking numbers (numbers callers dial)."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from calltrack import phone
from calltrack import tags as tag_rules
from calltrack.account_fields import account_field
from calltrack.fields import PhoneNumberField, validate_send_digits


class NoAnswerAction(models.TextChoices):
    HANGUP = "hangup", "Say a message and hang up"
    FORWARD = "forward", "Forward to another receiving number"
    VOICEMAIL = "voicemail", "Take a voicemail"
    QUEUE = "queue", "Wait in the campaign's call queue"
    MENU = "menu", "Play a voice menu"


class ReceivingNumber(models.Model):
    account = account_field()
    number = PhoneNumberField(help_text="The line calls are forwarded to. E.164 (+14155550123) or the default region's national format.")
    country = models.CharField(max_length=2, blank=True, editable=False, help_text="Derived from the number.")
    label = models.CharField(max_length=200, help_text="A name you will recognize, e.g. 'Denver call center'.")
    extension_digits = models.CharField(
        max_length=50, blank=True, validators=[validate_send_digits],
        help_text="Keys dialled once the line answers, to reach an extension or skip its menu: 0-9, *, #, "
        "and w for a half-second pause (e.g. ww123#).",
    )
    digits_delay = models.PositiveSmallIntegerField(
        default=0, validators=[MaxValueValidator(30)], help_text="Seconds to wait after the line answers before sending the digits."
    )
    whisper_message = models.CharField(
        max_length=500, blank=True,
        help_text=_("Said to whoever answers before the caller is connected. Blank: the campaign, source and caller's "
        "city/state are announced. Tokens: {campaign}, {source}, {city}, {state}."),
    )
    skip_whisper = models.BooleanField(default=False, help_text="Connect without any whisper.")
    ring_timeout = models.PositiveSmallIntegerField(
        default=30, validators=[MinValueValidator(5), MaxValueValidator(600)], help_text="Seconds to ring before no-answer routing (5-600)."
    )
    no_answer_action = models.CharField(
        max_length=10, choices=NoAnswerAction.choices, default=NoAnswerAction.HANGUP,
        help_text=_("What happens when this line is busy or not answered and no other handler is left."),
    )
    no_answer_forward_to = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        help_text="For 'forward': the receiving number dialled next.",
    )
    no_answer_menu = models.ForeignKey(
        "tracking.IVRMenu", verbose_name="no-answer menu", null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        help_text="For 'menu': the IVR sub-menu the caller hears; its keys route as any sub-menu's do, and no key goes on down "
        "the fallback chain. Played on calls of the menu's own campaign (on another campaign's calls the line hangs up "
        "after the fallback chain).",
    )
    no_answer_message = models.CharField(
        max_length=500, blank=True,
        help_text="Said before hanging up (after the fallback chain, also after a queue or a menu), or as the voicemail greeting.",
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["label"]
        indexes = [models.Index(fields=["number"])]

    def __str__(self) -> str:
        return f"{self.label} ({self.number})"

    @property
    def send_digits(self) -> str:
        """Twilio sendDigits: the delay as w pauses (half a second each), then the digits."""
        if not self.extension_digits:
            return ""
        return "w" * (self.digits_delay * 2) + self.extension_digits

    def clean(self) -> None:
        if self.number:
            self.country = phone.country(self.number)
        if self.no_answer_action == NoAnswerAction.FORWARD:
            if not self.no_answer_forward_to_id:
                raise ValidationError({"no_answer_forward_to": "Choose the receiving number to forward to."})
            if self.pk and self.no_answer_forward_to_id == self.pk:
                raise ValidationError({"no_answer_forward_to": "A number cannot forward to itself."})
        if self.no_answer_action == NoAnswerAction.MENU and not self.no_answer_menu_id:
            raise ValidationError({"no_answer_menu": "Choose the menu the caller hears."})

    def save(self, *args, **kwargs) -> None:
        if self.number and not self.country:
            self.country = phone.country(self.number)
        super().save(*args, **kwargs)


class NumberKind(models.TextChoices):
    STATIC = "static", "Static"
    POOL = "pool", "Pool (dynamic)"


class NumberStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    QUARANTINED = "quarantined", "Quarantined"
    PORTING_IN = "porting_in", "Porting in"
    PORTING_OUT = "porting_out", "Porting out"
    RELEASED = "released", "Released"


class NumberType(models.TextChoices):
    LOCAL = "local", "Local"
    TOLL_FREE = "toll_free", "Toll-free"
    MOBILE = "mobile", "Mobile"


# Numbers that still take calls: porting out keeps routing until completion; quarantined numbers' calls go to
# the fail-safe of their last campaign (routing.services.calls).
ROUTABLE_STATUSES = (NumberStatus.ACTIVE, NumberStatus.PORTING_OUT, NumberStatus.QUARANTINED)


class TrackingNumberQuerySet(models.QuerySet):
    def active(self) -> TrackingNumberQuerySet:
        return self.filter(status=NumberStatus.ACTIVE)

    def routable(self) -> TrackingNumberQuerySet:
        """Numbers that still take calls (porting out keeps routing until completion)."""
        return self.filter(status__in=ROUTABLE_STATUSES)


class TrackingNumber(models.Model):
    account = account_field()
    number = PhoneNumberField(unique=True, help_text="The number callers dial, E.164 (+18005550123).")
    label = models.CharField(max_length=200, blank=True, help_text="Where this number is shown, e.g. 'Billboard I-95 north'.")
    kind = models.CharField(max_length=10, choices=NumberKind.choices, default=NumberKind.STATIC, help_text="Static (one promotion, fixed data) or pool (one web visitor at a time).")
    status = models.CharField(
        max_length=20, choices=NumberStatus.choices, default=NumberStatus.ACTIVE,
        help_text="Active numbers take calls; quarantined ones wait before reuse; porting out keeps routing until the port completes.",
    )
    number_type = models.CharField(max_length=10, choices=NumberType.choices, default=NumberType.LOCAL, editable=False, help_text="Derived from the number.")
    area_code = models.CharField(max_length=6, blank=True, editable=False, db_index=True, help_text="Derived from the number.")
    country = models.CharField(max_length=2, blank=True, editable=False)
    campaign = models.ForeignKey(
        "tracking.Campaign", null=True, blank=True, on_delete=models.SET_NULL, related_name="tracking_numbers",
        help_text="The campaign that routes this number's calls.",
    )
    source = models.ForeignKey(
        "tracking.Source", verbose_name=pgettext_lazy("party", "source"), null=True, blank=True, on_delete=models.SET_NULL, related_name="tracking_numbers",
        help_text="Who gets credit for calls to this number (static numbers; pool numbers take the pool's).",
    )
    pool = models.ForeignKey(
        "numbers.NumberPool", null=True, blank=True, on_delete=models.SET_NULL, related_name="numbers",
        db_index=False,  # the (pool, status, last_assigned_at) index starts with it
        help_text="The pool this number serves web visitors from (pool numbers only).",
    )
    marketing_data = models.JSONField(
        default=dict, blank=True,
        help_text='Fixed data every call to this static number carries, e.g. {"utm_source": "billboard", "utm_campaign": "spring"}.',
    )
    failsafe_number = PhoneNumberField(blank=True, help_text="Dialled if anything fails while routing (before the campaign's fail-safe).")
    assigned_agent = models.ForeignKey(
        "numbers.ReceivingNumber", null=True, blank=True, on_delete=models.SET_NULL, related_name="assigned_tracking_numbers",
        help_text=_("Fallback chain, first step: this agent's line takes the call when no handler answered."),
    )
    forwarding_number = PhoneNumberField(blank=True, help_text=_("Fallback chain, third step: dialled when no handler, number agent or caller agent took the call."))
    whisper_message = models.CharField(max_length=500, blank=True, help_text="Whisper for calls to this number (overrides the receiving number's).")
    filters = models.JSONField(default=list, blank=True, help_text=tag_rules.FILTERS_HELP_TEXT)
    filters_after_ivr = models.BooleanField(
        "filters after IVR",
        default=False,
        help_text="Check the accept/reject rules after the IVR menu (so they can use the keys pressed and the menu's "
        "tags) instead of before any prompt. A call rejected then hears nothing more and is hung up.",
    )
    carrier = models.CharField(max_length=20, default="local", help_text="The carrier this number is bought from.")
    carrier_id = models.CharField(max_length=64, blank=True, help_text="The carrier's id for the number (Twilio's PN... sid).")
    last_assigned_at = models.DateTimeField(null=True, blank=True, help_text="When a pool last showed this number to a visitor.")
    # Written only by numbers.dni.services under the number's row lock: the session that holds this pool
    # number now (or held it last). A visitor's session is extended only while it is still the holder, so a
    # number taken over by another visitor can never be extended back to the first one.
    current_session = models.ForeignKey(
        "numbers.NumberSession", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", editable=False,
        help_text="The visitor session this pool number is shown to (or was last shown to).",
    )
    quarantined_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    objects = TrackingNumberQuerySet.as_manager()

    class Meta:
        ordering = ["number"]
        # Raw SQL, for active pool numbers, DNI's least recently shown first: on PostgreSQL numbers_pool_lru_idx
        # (pool, COALESCE(last_assigned_at, '-infinity'), id), read by range for "free" (migration numbers 0015);
        # on SQLite tracking_pool_lru_idx (pool, last_assigned_at, id), from migration numbers 0004.
        # Each DNI assignment updates last_assigned_at and current_session, so it is not a HOT update: it writes an
        # entry into every index of the table. Migration numbers 0014 dropped those no query needed (tests/numbers/
        # test_number_indexes.py).
        indexes = [models.Index(fields=["pool", "status", "last_assigned_at"])]

    def __str__(self) -> str:
        return self.number

    @property
    def formatted(self) -> str:
        return phone.format_national(self.number) if self.number else ""

    def derive_from_number(self) -> None:
        if self.number:
            self.number_type = phone.number_type(self.number)
            self.area_code = phone.area_code(self.number)
            self.country = phone.country(self.number)

    def save(self, *args, **kwargs) -> None:
        self.derive_from_number()
        super().save(*args, **kwargs)

    def clean(self) -> None:
        self.derive_from_number()
        errors: dict[str, str] = {}
        if self.kind == NumberKind.STATIC and self.pool_id:
            errors["pool"] = "A static number cannot be in a pool; make it a pool number or clear the pool."
        if self.kind == NumberKind.POOL:
            if self.marketing_data:
                errors["marketing_data"] = "Pool numbers take marketing data from each visitor; fixed data is for static numbers."
        if not isinstance(self.marketing_data, dict):
            errors["marketing_data"] = "Marketing data must be an object of keys and values."
        try:
            self.filters = tag_rules.validate_filters(self.filters)
        except tag_rules.TagRuleError as exc:
            errors["filters"] = str(exc)
        if self.kind == NumberKind.STATIC and self.source_id and self.status != NumberStatus.RELEASED:
            cap = self.source.static_number_cap
            if cap is not None:
                held = (
                    TrackingNumber.objects.filter(source_id=self.source_id, kind=NumberKind.STATIC)
                    .exclude(status=NumberStatus.RELEASED)
                    .exclude(pk=self.pk)
                    .count()
                )
                if held >= cap:
                    errors["source"] = f"{self.source} already holds {held} of its {cap} static numbers (its static number cap)."
        if errors:
            raise ValidationError(errors)


class BlockedCaller(models.Model):
    account = account_field()
    number = PhoneNumberField(help_text="Calls from this number are rejected.")
    campaign = models.ForeignKey(
        "tracking.Campaign", null=True, blank=True, on_delete=models.CASCADE, related_name="blocked_callers",
        help_text="Block only in this campaign; blank blocks in every campaign of the account.",
    )
    reason = models.CharField(max_length=200, blank=True, help_text="Why, for the record.")
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["number"]
        constraints = [models.UniqueConstraint(fields=["number", "campaign"], name="blocked_caller_unique")]

    def __str__(self) -> str:
        return self.number


class NumberEvent(models.Model):
    """Every change of a tracking number's state: who, when, from, to, why."""

    tracking_number = models.ForeignKey(TrackingNumber, on_delete=models.CASCADE, related_name="events")
    at = models.DateTimeField(default=timezone.now)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    actor_label = models.CharField(max_length=100, blank=True, help_text="A command or task name when no user acted.")
    from_status = models.CharField(max_length=20, blank=True)
    to_status = models.CharField(max_length=20, blank=True)
    reason = models.CharField(max_length=500, blank=True)
    changes = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"{self.tracking_number}: {self.from_status} -> {self.to_status}"
