"""Lookup-table routing: a table maps a value of the call (caller zip, state, a tag, the detected destination)
to a handler or a number."""

from __future__ import annotations

import re

from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from calltrack.fields import PhoneNumberField
from calltrack.tags import MAX_LOOKUP_KEYS, lookup_keys, lookup_row_value

_TAG_KEY = re.compile(r"^[A-Za-z0-9_.:\-]{1,64}$")


class WhenUnavailable(models.TextChoices):
    FALLBACK = "fallback", "Go down the campaign's fallback chain"
    OTHERS = "others", "Try the rest of the campaign's routing"


class RoutingTable(models.Model):
    campaign = models.ForeignKey("tracking.Campaign", on_delete=models.CASCADE, related_name="routing_tables", help_text="The campaign whose calls this table routes.")
    name = models.CharField(max_length=100, help_text="Your name for this table, e.g. 'Stores by zip'.")
    tag_key = models.CharField(
        max_length=64, default="caller_zip",
        help_text="What of the call is looked up: caller_zip, caller_state, caller_city, destination (the number the "
        "visitor's page showed), key_pressed, or any tag or marketing data key (utm_campaign ...). Up to three, "
        "comma-separated, to look up their combination (caller_state,utm_source: a row's value is then co|google).",
    )
    when_unavailable = models.CharField(
        max_length=10, choices=WhenUnavailable.choices, default=WhenUnavailable.FALLBACK,
        help_text=_("When the one a row names cannot take the call (closed, at a cap, busy): the campaign's fallback "
                    "chain, or the rest of the campaign's routing first (in its usual order)."),
    )
    enabled = models.BooleanField(default=True, help_text="Untick to route as if this table did not exist.")
    position = models.PositiveIntegerField(default=0, help_text="Tables are tried lowest first; the first row found routes the call.")

    class Meta:
        ordering = ["campaign_id", "position", "id"]

    def __str__(self) -> str:
        return f"{self.name} (by {self.tag_key})"

    def clean(self) -> None:
        keys = lookup_keys(self.tag_key)
        if not keys or len(keys) > MAX_LOOKUP_KEYS or not all(_TAG_KEY.match(k) for k in keys):
            raise ValidationError({"tag_key": f"1 to {MAX_LOOKUP_KEYS} keys, comma-separated, each 1-64 letters, digits or _ . : -"})
        self.tag_key = ",".join(keys)


class RoutingTableRow(models.Model):
    table = models.ForeignKey(RoutingTable, on_delete=models.CASCADE, related_name="rows", help_text="The table this row belongs to.")
    value = models.CharField(max_length=200, help_text="The value looked up, e.g. 80202, CO, or +13035550100 for a destination (any case).")
    handler = models.ForeignKey(
        "tracking.Handler", verbose_name=pgettext_lazy("party", "handler"), null=True, blank=True, on_delete=models.CASCADE, related_name="+",
        help_text=_("The handler a call with this value goes to (its caps and hours apply)…"),
    )
    number = PhoneNumberField(blank=True, help_text="…or the number it is forwarded to (then the campaign's fallback chain).")

    class Meta:
        ordering = ["table_id", "value"]
        constraints = [models.UniqueConstraint(fields=["table", "value"], name="routing_table_row_unique")]

    def __str__(self) -> str:
        return f"{self.value} -> {self.handler or self.number}"

    def clean(self) -> None:
        errors: dict[str, str] = {}
        key = self.table.tag_key if self.table_id else ""
        count = len(lookup_keys(key))
        self.value = lookup_row_value(key, self.value)[:200]
        if not self.value:
            errors["value"] = "Give the value to look up." if count <= 1 else f"Give {count} values, | between (e.g. co|google)."
        if bool(self.handler_id) == bool(self.number):
            errors[_("handler")] = _("Choose a handler or give a number (one of the two).")
        if errors:
            raise ValidationError(errors)
