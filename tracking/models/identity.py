"""The carrier's caller lookup, cached per number (issue 28): what Twilio Lookup (or the local carrier) said about a
caller's number, so that a caller who calls again is not looked up (and billed) again within
``CALLTRACK_CALLER_LOOKUP_DAYS``."""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class CallerLookup(models.Model):
    """One caller number's last lookup. Written only by ``calltrack.numbers.services.caller_lookup`` (an upsert on the
    number); read by the voice path through the unique index on ``number``."""

    number = models.CharField(max_length=32, unique=True, help_text="The caller's number, E.164.")
    fields = models.CharField(
        max_length=40, blank=True,
        help_text="What was asked (caller_name, line_type, comma-separated): a lookup that asked less is asked again.",
    )
    caller_name = models.CharField(max_length=100, blank=True, help_text="The caller name (CNAM) the carrier gave.")
    caller_type = models.CharField(max_length=20, blank=True, help_text="CONSUMER or BUSINESS, when the carrier says.")
    line_type = models.CharField(
        max_length=20, blank=True,
        help_text="The line type in Twilio Lookup's words: mobile, landline, fixedVoip, nonFixedVoip, tollFree, ...",
    )
    carrier_name = models.CharField(max_length=100, blank=True, help_text="The line's carrier, when the carrier says.")
    fetched_at = models.DateTimeField(default=timezone.now, help_text="When the carrier answered.")

    class Meta:
        verbose_name = "caller lookup"

    def __str__(self) -> str:
        return self.number

    def covers(self, fields: tuple[str, ...]) -> bool:
        """Whether this lookup asked at least ``fields``."""
        asked = set(self.fields.split(","))
        return all(f in asked for f in fields)
