"""Number pools (RingPools) and the sessions that show one pool number to one visitor."""

from __future__ import annotations

import re
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import pgettext_lazy

from calltrack.account_fields import account_field
from calltrack.fields import PhoneNumberField
from calltrack.ids import unique_slug


class PoolNumberType(models.TextChoices):
    MATCH = "match", "Match the destination (toll-free for toll-free, same area code for local)"
    LOCAL = "local", "Local only"
    TOLL_FREE = "toll_free", "Toll-free only"


class OverflowPolicy(models.TextChoices):
    REUSE_OLDEST = "reuse_oldest", "Reuse the least recently assigned number (newest visitor gets credit)"
    FALLBACK = "fallback", "Show the fallback number (calls are credited to the pool, not a visitor)"


class NumberPool(models.Model):
    account = account_field()
    name = models.CharField(max_length=200, help_text="Your name for this pool, e.g. 'Main site'.")
    key = models.SlugField(
        max_length=64, blank=True, db_index=False,  # the (account, key) unique index finds it
        help_text="Public key the JavaScript tag uses (data-pool), unique in the account. Leave blank to derive one from the name.",
    )
    enabled = models.BooleanField(default=True, help_text="Untick to stop handing out numbers (pages keep their own numbers).")
    campaign = models.ForeignKey("tracking.Campaign", on_delete=models.PROTECT, related_name="pools", help_text="The campaign that routes calls to this pool's numbers.")
    source = models.ForeignKey(
        "tracking.Source", verbose_name=pgettext_lazy("party", "source"), null=True, blank=True, on_delete=models.SET_NULL, related_name="pools",
        help_text="Who gets credit for calls to this pool when the visitor's data does not say.",
    )
    number_type = models.CharField(max_length=10, choices=PoolNumberType.choices, default=PoolNumberType.MATCH, help_text="Which numbers are shown in place of the page's number.")
    match_area_code = models.BooleanField(default=True, help_text="For local numbers: prefer the destination's area code, then its state, then any.")
    session_lifetime = models.PositiveIntegerField(
        default=1800, validators=[MinValueValidator(60), MaxValueValidator(86400)],
        help_text="Seconds a visitor keeps its number after the last page activity (heartbeats extend it).",
    )
    attribution_window = models.PositiveIntegerField(
        default=72, validators=[MinValueValidator(1), MaxValueValidator(24 * 90)],
        help_text="Hours a call to a number is still credited to the last visitor shown it (72 by default).",
    )
    overflow_policy = models.CharField(max_length=20, choices=OverflowPolicy.choices, default=OverflowPolicy.REUSE_OLDEST, help_text="What a visitor gets when every number is in use.")
    fallback_number = PhoneNumberField(blank=True, help_text="Shown when the pool overflows with the 'fallback' policy; usually a static number of the campaign.")
    allowed_origins = models.TextField(
        blank=True,
        help_text="Web origins allowed to ask for numbers, one per line (https://www.example.com). Blank: none (same-site pages only).",
    )
    overflow_count = models.PositiveBigIntegerField(default=0, editable=False, help_text="Visitors who found every number in use.")
    dropped_parameter_count = models.PositiveBigIntegerField(
        default=0, editable=False,
        help_text="Custom parameters the tag sent that this pool does not accept (undeclared, or a value of the wrong type or too long).",
    )
    autoscale = models.BooleanField(default=False, help_text="Resize the pool from measured peak traffic (a scheduled task).")
    autoscale_min = models.PositiveIntegerField(default=5, validators=[MinValueValidator(1)], help_text="Never fewer numbers than this.")
    autoscale_max = models.PositiveIntegerField(default=100, validators=[MinValueValidator(1)], help_text="Never more numbers than this.")
    autoscale_headroom = models.DecimalField(
        max_digits=4, decimal_places=2, default=Decimal("0.20"), validators=[MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("5"))],
        help_text="Spare capacity over the measured peak: 0.20 keeps 20% more numbers than the busiest moment needed.",
    )
    buy_area_code = models.CharField(max_length=6, blank=True, help_text="Area code to buy local numbers in when scaling up (blank: the pool's most common).")
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["account", "key"], name="pool_key_unique_per_account")]

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs) -> None:
        if not self.key:
            self.key = unique_slug(self, "key", self.name, max_length=64)
        super().save(*args, **kwargs)

    @property
    def origins(self) -> list[str]:
        return [line.strip().rstrip("/") for line in self.allowed_origins.splitlines() if line.strip()]

    def clean(self) -> None:
        errors: dict[str, str] = {}
        if self.overflow_policy == OverflowPolicy.FALLBACK and not self.fallback_number:
            errors["fallback_number"] = "The 'fallback' overflow policy needs a fallback number."
        if self.autoscale_min > self.autoscale_max:
            errors["autoscale_min"] = "The minimum size cannot be above the maximum."
        for origin in self.origins:
            if not origin.startswith(("http://", "https://")) or "/" in origin.split("://", 1)[1]:
                errors["allowed_origins"] = f"'{origin}' is not an origin like https://www.example.com."
                break
        if errors:
            raise ValidationError(errors)


class ParameterKind(models.TextChoices):
    TEXT = "text", "Text"
    INTEGER = "integer", "Whole number"
    DECIMAL = "decimal", "Decimal number"
    BOOLEAN = "boolean", "Yes/no (true, false, 1, 0, yes, no)"


PARAMETER_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
# Names a custom parameter may not take: the tag's own marketing keys and the tags calltrack sets itself.
RESERVED_PARAMETER_NAMES = frozenset({
    "utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content", "utm_id",
    "gclid", "gbraid", "wbraid", "fbclid", "msclkid",
    "caller_state", "caller_zip", "caller_city", "caller_country", "source",
})


class PoolParameter(models.Model):
    """A custom caller attribute a landing page may pass through the tag (Retreaver's parameter mapping): it
    arrives on the call as a tag, for routing tag criteria, webhooks, the call log and its export."""

    pool = models.ForeignKey(NumberPool, on_delete=models.CASCADE, related_name="parameters")
    name = models.CharField(
        max_length=40,
        help_text="The parameter's name as the page sends it and as the call's tag: lowercase letters, digits and _ (e.g. 'plan', 'lead_score').",
    )
    kind = models.CharField(max_length=10, choices=ParameterKind.choices, default=ParameterKind.TEXT, help_text="What a value must look like; any other value is dropped and counted.")
    max_length = models.PositiveSmallIntegerField(
        default=100, validators=[MinValueValidator(1), MaxValueValidator(500)],
        help_text="Longest value accepted, in characters (1-500); a longer one is dropped and counted.",
    )

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["pool", "name"], name="numbers_poolparameter_unique_name")]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        if not PARAMETER_NAME.match(self.name or ""):
            raise ValidationError({"name": f"'{self.name}' is not a parameter name: start with a lowercase letter, then lowercase letters, digits or _ (40 at most)."})
        if self.name in RESERVED_PARAMETER_NAMES:
            raise ValidationError({"name": f"'{self.name}' is set by calltrack itself; choose another name."})


class NumberSessionQuerySet(models.QuerySet):
    def live(self, at=None) -> NumberSessionQuerySet:
        return self.filter(expires_at__gt=at or timezone.now())


class NumberSession(models.Model):
    # Each new visitor inserts a session: the foreign keys have no index of their own, the composite indexes below
    # start with them (migration numbers 0014).
    pool = models.ForeignKey(NumberPool, on_delete=models.CASCADE, related_name="sessions", db_index=False)
    tracking_number = models.ForeignKey(
        "numbers.TrackingNumber", null=True, blank=True, on_delete=models.SET_NULL, related_name="sessions", db_index=False,
        help_text="The number shown; empty when the visitor got the pool's fallback number.",
    )
    visitor_id = models.CharField(max_length=64, db_index=True)
    started_at = models.DateTimeField(default=timezone.now)
    last_seen_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    page_url = models.URLField(max_length=2000, blank=True)
    landing_page = models.URLField(max_length=2000, blank=True)
    referrer = models.URLField(max_length=2000, blank=True)
    destination_number = models.CharField(max_length=32, blank=True, help_text="The page's own number this session's number replaced.")
    marketing_data = models.JSONField(default=dict, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    is_overflow = models.BooleanField(default=False)

    objects = NumberSessionQuerySet.as_manager()

    class Meta:
        ordering = ["-started_at"]
        indexes = [
            models.Index(fields=["tracking_number", "started_at"]),
            models.Index(fields=["pool", "visitor_id", "expires_at"]),
            models.Index(fields=["pool", "expires_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.visitor_id} on {self.tracking_number or 'fallback'}"


class PoolResize(models.Model):
    """One autoscaling decision (or a manual resize), with its reason."""

    pool = models.ForeignKey(NumberPool, on_delete=models.CASCADE, related_name="resizes")
    at = models.DateTimeField(default=timezone.now)
    from_size = models.PositiveIntegerField()
    to_size = models.PositiveIntegerField()
    peak_sessions = models.PositiveIntegerField(default=0)
    reason = models.CharField(max_length=500)

    class Meta:
        ordering = ["-at"]

    def __str__(self) -> str:
        return f"{self.pool}: {self.from_size} -> {self.to_size}"


class PoolSample(models.Model):
    """A periodic measure of a pool's live sessions and size, for the admin's chart and autoscaling."""

    pool = models.ForeignKey(NumberPool, on_delete=models.CASCADE, related_name="samples")
    at = models.DateTimeField(default=timezone.now)
    live_sessions = models.PositiveIntegerField()
    size = models.PositiveIntegerField()
    overflow_count = models.PositiveBigIntegerField(default=0)

    class Meta:
        ordering = ["-at"]
        indexes = [models.Index(fields=["pool", "at"])]

    def __str__(self) -> str:
        return f"{self.pool} at {self.at:%Y-%m-%d %H:%M}: {self.live_sessions}/{self.size}"


