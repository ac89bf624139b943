"""Tagging hours: weekly schedules that tag a call by when it arrives ("after hours", "weekend")."""

from __future__ import annotations

import re

from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone as dj_timezone

from calltrack import hours as hours_rules
from calltrack.account_fields import account_field

_TAG_KEY = re.compile(r"^[A-Za-z0-9_.:\-]{1,64}$")


class HoursMatch(models.TextChoices):
    INSIDE = "inside", "During these hours"
    OUTSIDE = "outside", "Outside these hours"


class TaggingHours(models.Model):
    """One schedule, account-wide (no campaign) or for one campaign. A call arriving inside (or outside) the
    hours gets the tag ``tag_key=tag_value``. A campaign's own schedule wins over an account-wide one that
    sets the same tag."""

    account = account_field()

    name = models.CharField(max_length=100, help_text="Your name for this schedule, e.g. 'After hours' or 'Weekend'.")
    campaign = models.ForeignKey(
        "tracking.Campaign", null=True, blank=True, on_delete=models.CASCADE, related_name="tagging_hours",
        help_text="Leave blank to tag the calls of every campaign (account-wide).",
    )
    enabled = models.BooleanField(default=True, help_text="Untick to stop tagging calls with this schedule.")
    timezone = models.CharField(max_length=64, default="America/New_York", help_text="IANA time zone the hours are read in, e.g. America/Denver.")
    hours = models.JSONField(
        default=dict, blank=True,
        help_text="Ranges per day, in the schedule's time zone. A range past midnight ends with +1 (22:00-02:00+1).",
    )
    match = models.CharField(
        max_length=10, choices=HoursMatch.choices, default=HoursMatch.INSIDE,
        help_text="Tag calls arriving during these hours, or outside them (e.g. hours 09:00-17:00 on weekdays, "
        "'outside' tags every call after hours).",
    )
    tag_key = models.CharField(max_length=64, default="hours", help_text="The tag's name; tag criteria, filters, webhooks ([tag:hours]) and the API read it.")
    tag_value = models.CharField(max_length=200, help_text="The tag's value, e.g. 'after_hours', 'weekend', 'lunch'.")
    created_at = models.DateTimeField(default=dj_timezone.now, editable=False)

    class Meta:
        ordering = ["campaign_id", "name", "id"]
        verbose_name = "tagging hours"
        verbose_name_plural = "tagging hours"

    def __str__(self) -> str:
        return f"{self.name} ({self.tag_key}={self.tag_value})"

    def clean(self) -> None:
        errors: dict[str, str] = {}
        try:
            self.hours = hours_rules.validate(self.hours)
        except hours_rules.HoursError as exc:
            errors["hours"] = str(exc)
        try:
            hours_rules.zone(self.timezone)
        except hours_rules.HoursError as exc:
            errors["timezone"] = str(exc)
        if not _TAG_KEY.match(self.tag_key or ""):
            errors["tag_key"] = "1-64 letters, digits or _ . : -"
        if not (self.tag_value or "").strip():
            errors["tag_value"] = "Give the tag's value, e.g. after_hours."
        if errors:
            raise ValidationError(errors)
