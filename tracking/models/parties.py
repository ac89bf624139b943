"""Who generates calls (sources), who receives them (handlers), and who calls (contacts)."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.timezone import now as _now
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from calltrack import geodata
from calltrack import hours as hours_rules
from calltrack import tags as tag_rules
from calltrack.account_fields import account_field
from calltrack.fields import PhoneNumberField
from calltrack.ids import unique_slug


class Source(models.Model):
    account = account_field()
    name = models.CharField(max_length=200, help_text=_("Your name for this source of calls, e.g. 'Google Ads - Brand'."))
    source_id = models.SlugField(
        _("source ID"),
        max_length=64,
        blank=True,
        help_text=_("Public identifier (unique in its account) that handler collaborators and postbacks see (e.g. 'adwords', 'facebook'). "
        "Leave blank to derive one from the name. Do not put sensitive information here."),
    )
    first_name = models.CharField(max_length=100, blank=True, help_text="Contact person's first name (or the company name alone).")
    last_name = models.CharField(max_length=100, blank=True, help_text="Contact person's last name.")
    company = models.CharField(max_length=200, blank=True, help_text=_("Company name of the source."))
    static_number_cap = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text=_("The most static tracking numbers this source may hold across all campaigns. Blank for no limit."),
    )
    google_call_asset = models.BooleanField(
        _("Google call asset calls"), default=False,
        help_text=_("Calls from this source come from a Google Ads call asset (call extension) through a Google "
                    "forwarding number: give the source the tracking number placed in the call asset. Such a call "
                    "without a click id is sent to Google Ads as a call conversion (caller id and call start time)."),
    )
    notes = models.TextField(blank=True, help_text=_("Anything your team should know about this source."))
    # Nullable without a default, so that adding them altered tracking_source in place (no SQLite rebuild that
    # would drop the money history's triggers on it). Written only by the pause and resume services.
    paused_at = models.DateTimeField(
        null=True, blank=True, editable=False,
        help_text=_("Paused (by a fraud monitor or by hand): its numbers' calls go to the campaign's fail-safe until resumed."),
    )
    paused_reason = models.CharField(  # noqa: DJ001 - nullable: see above
        max_length=300, null=True, blank=True, editable=False, help_text=_("Why it is paused: the monitor and what it measured, or who paused it."),
    )
    created_at = models.DateTimeField(default=_now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name = pgettext_lazy("party", "source")
        verbose_name_plural = pgettext_lazy("party", "sources")
        # Two clients of one install may both call a source "google": unique per account.
        constraints = [models.UniqueConstraint(fields=["account", "source_id"], name="source_id_unique_per_account")]

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs) -> None:
        if not self.source_id:
            self.source_id = unique_slug(self, "source_id", self.name, max_length=64)
        super().save(*args, **kwargs)

    def clean(self) -> None:
        if self.static_number_cap is not None and self.pk:
            held = self.tracking_numbers.filter(kind="static").exclude(status="released").count()
            if held > self.static_number_cap:
                raise ValidationError(
                    {"static_number_cap": _("This source already holds {held} static numbers; release some first or raise the cap.").format(held=held)}
                )


class CapTrigger(models.TextChoices):
    CONNECTION = "connection", "Connected calls"
    CONVERSION = "conversion", "Converted calls"


class DuplicateOn(models.TextChoices):
    ANSWERED = "answered", "Answered (took the call)"
    CONVERTED = "converted", "Converted (paid for the call)"


class Handler(models.Model):
    account = account_field()
    name = models.CharField(max_length=200, help_text="Who receives the calls: an agent, a call center, a buyer.")
    buyer_id = models.CharField(
        "buyer ID", max_length=100, blank=True, help_text="Your or the buyer's own identifier, to match other systems."
    )
    receiving_number = models.ForeignKey(
        "numbers.ReceivingNumber",
        on_delete=models.PROTECT,
        related_name="handlers",
        help_text=_("The real phone line this handler's calls are forwarded to (with its digits, whisper and ring timeout)."),
    )
    enabled = models.BooleanField(default=True, help_text=_("Untick to stop sending calls to this handler in every campaign."))
    priority = models.PositiveSmallIntegerField(
        default=1,
        validators=[MinValueValidator(1), MaxValueValidator(99)],
        help_text="1 rings first; if nobody at priority 1 answers (or all are closed or capped), priority 2 rings, and so on.",
    )
    weight = models.PositiveIntegerField(
        default=1,
        validators=[MinValueValidator(1), MaxValueValidator(1000)],
        help_text=_("Share of calls among open handlers of the same priority: weight 3 gets three times the calls of weight 1."),
    )
    ring_timeout = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(5), MaxValueValidator(600)],
        help_text=_("Seconds to ring this handler before moving on (5-600). Blank uses the receiving number's timeout."),
    )
    concurrency_cap = models.PositiveIntegerField(
        null=True, blank=True, help_text=_("Most calls this handler takes at the same time. Blank for no limit.")
    )
    hourly_cap = models.PositiveIntegerField(null=True, blank=True, help_text=_("Most counted calls per clock hour (handler's time zone). Blank for none."))
    daily_cap = models.PositiveIntegerField(null=True, blank=True, help_text=_("Most counted calls per day (handler's time zone). Blank for none."))
    monthly_cap = models.PositiveIntegerField(null=True, blank=True, help_text="Most counted calls per calendar month. Blank for none.")
    total_cap = models.PositiveIntegerField(null=True, blank=True, help_text="Most counted calls ever. Blank for none.")
    cap_counts = models.CharField(
        "caps count",
        max_length=20,
        choices=CapTrigger.choices,
        default=CapTrigger.CONNECTION,
        help_text="What counts toward the hourly, daily, monthly and total caps: every connected call, or only converted calls.",
    )
    # Nullable without a default: SQLite adds the columns in place (a NOT NULL column rebuilds the table, dropping
    # its money history triggers). A blank ``duplicate_on`` means "answered".
    duplicate_days = models.PositiveIntegerField(
        "duplicate days", null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(3650)],
        help_text=_("Restrict duplicates: a caller this handler already had within this many days is sent to the campaign's "
                    "other handlers instead. Blank: off."),
    )
    duplicate_on = models.CharField(
        "duplicate when", max_length=10, null=True, blank=True, choices=DuplicateOn.choices,
        help_text=_("What makes a repeat caller a duplicate for this handler: an earlier call it answered, or only one it "
                    "converted (the revenue side). Blank: answered."),
    )
    timezone = models.CharField(
        max_length=64,
        default="America/New_York",
        help_text="IANA time zone the business hours and the daily/hourly caps are read in, e.g. America/Chicago.",
    )
    always_open = models.BooleanField(default=True, help_text="Tick to take calls at any hour; untick to use the business hours below.")
    business_hours = models.JSONField(
        default=dict,
        blank=True,
        help_text=_("Open ranges per day, in the handler's time zone. A range past midnight ends with +1 (22:00-02:00+1)."),
    )
    location_zip = models.CharField(
        "location zip", max_length=10, blank=True,
        help_text=_("Where this handler is, as a US zip code (e.g. 80202), for the 'nearest' strategy. Fills the "
        "coordinates below when they are blank."),
    )
    latitude = models.FloatField(
        null=True, blank=True, validators=[MinValueValidator(-90), MaxValueValidator(90)],
        help_text="Latitude in degrees (e.g. 39.7526); blank: from the zip code.",
    )
    longitude = models.FloatField(
        null=True, blank=True, validators=[MinValueValidator(-180), MaxValueValidator(180)],
        help_text="Longitude in degrees (e.g. -104.9981); blank: from the zip code.",
    )
    tag_criteria = models.JSONField(
        default=list,
        blank=True,
        help_text=tag_rules.HELP_TEXT,
    )
    created_at = models.DateTimeField(default=_now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["priority", "name"]
        verbose_name = pgettext_lazy("party", "handler")
        verbose_name_plural = pgettext_lazy("party", "handlers")
        indexes = [models.Index(fields=["enabled", "priority"])]

    def __str__(self) -> str:
        return self.name

    @property
    def effective_ring_timeout(self) -> int:
        return self.ring_timeout or self.receiving_number.ring_timeout

    def clean(self) -> None:
        errors: dict[str, str] = {}
        try:
            hours_rules.zone(self.timezone)
        except hours_rules.HoursError as exc:
            errors["timezone"] = str(exc)
        try:
            self.business_hours = hours_rules.validate(self.business_hours)
        except hours_rules.HoursError as exc:
            errors["business_hours"] = str(exc)
        if not self.always_open and not self.business_hours and "business_hours" not in errors:
            errors["business_hours"] = "Give at least one open range, or tick 'always open'."
        try:
            self.tag_criteria = tag_rules.validate(self.tag_criteria)
        except tag_rules.TagRuleError as exc:
            errors["tag_criteria"] = str(exc)
        if self.duplicate_on and not self.duplicate_days:
            errors["duplicate_days"] = "Give the days in which a repeat caller is a duplicate (or clear 'duplicate when')."
        if self.location_zip.strip():
            point = geodata.zip_point(self.location_zip)
            if point is None:
                errors["location_zip"] = f"'{self.location_zip}' is not a US zip code we know."
            elif self.latitude is None and self.longitude is None:
                self.latitude, self.longitude = point
        if self.latitude is not None and self.longitude is not None and not geodata.valid_point(self.latitude, self.longitude):
            errors["latitude"] = "Latitude -90..90 and longitude -180..180 degrees."
        if (self.latitude is None) != (self.longitude is None):
            errors["longitude" if self.longitude is None else "latitude"] = "Give both coordinates, or neither."
        caps = [("hourly_cap", self.hourly_cap), ("daily_cap", self.daily_cap), ("monthly_cap", self.monthly_cap), ("total_cap", self.total_cap)]
        present = [(n, v) for n, v in caps if v is not None]
        for (small_name, small), (big_name, big) in zip(present, present[1:]):
            if small > big:
                errors.setdefault(small_name, f"Cannot be above the {big_name.replace('_', ' ')} ({big}).")
        if errors:
            raise ValidationError(errors)


class Contact(models.Model):
    """A caller we know, with the agent they are assigned to (the fallback chain's second step)."""

    account = account_field()

    phone_number = PhoneNumberField(help_text="The caller's number (one contact per number and account); national formats are read in the default region.")
    name = models.CharField(max_length=200, blank=True, help_text="The caller's name, if known.")
    assigned_agent = models.ForeignKey(
        "numbers.ReceivingNumber",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="contacts",
        help_text="When nobody in the campaign answers, this caller's call goes to this agent's line.",
    )
    notes = models.TextField(blank=True, help_text="Anything worth knowing about this caller.")
    created_at = models.DateTimeField(default=_now, editable=False)

    class Meta:
        ordering = ["phone_number"]
        constraints = [models.UniqueConstraint(fields=["account", "phone_number"], name="contact_unique_per_account")]

    def __str__(self) -> str:
        return f"{self.name} ({self.phone_number})" if self.name else self.phone_number


class Collaborator(models.Model):
    """A login for a source or a handler: sees only its own calls, numbers and figures."""

    account = account_field()

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="collaborator",
        help_text=_("The login; it needs staff status to use the admin, and sees only its own source's or handler's data."),
    )
    source = models.ForeignKey(
        Source, verbose_name=pgettext_lazy("party", "source"), null=True, blank=True, on_delete=models.CASCADE, related_name="collaborators",
        help_text=_("This user sees only this source's calls, numbers and stats."),
    )
    handler = models.ForeignKey(
        Handler, verbose_name=pgettext_lazy("party", "handler"), null=True, blank=True, on_delete=models.CASCADE, related_name="collaborators",
        help_text=_("This user sees only calls routed to this handler."),
    )

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=(models.Q(source__isnull=False, handler__isnull=True) | models.Q(source__isnull=True, handler__isnull=False)),
                name="collaborator_exactly_one_party",
            )
        ]

    def save(self, *args, **kwargs) -> None:
        # Inside its party's account, always.
        party = self.source if self.source_id else self.handler if self.handler_id else None
        if party is not None:
            self.account_id = party.account_id
        super().save(*args, **kwargs)

    def __str__(self) -> str:
        return f"{self.user} -> {self.source or self.handler}"

    def clean(self) -> None:
        if bool(self.source_id) == bool(self.handler_id):
            raise ValidationError(_("Link the user to exactly one source or one handler."))
