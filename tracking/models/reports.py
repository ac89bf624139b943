"""Report rollups: the dashboard's figures per local day, kept exact on PostgreSQL.

``CallDayRollup`` holds, for one day in the operator's time zone, the day's totals (``dim="total"``) and
its totals per source, campaign, handler, tracking number, caller state and UTM value. A PostgreSQL trigger
(migration 0005) appends the day of every call that is inserted, deleted or changed in a reported column to
``CallRollupDirty`` in the writer's own transaction, whichever code wrote it (a late status callback, a
postback, the admin). The reporting selector reads a day from the rollups only when it has been rolled up and
nothing changed since; otherwise from the calls themselves; so the figures are exact at any moment, and
``report_rollups_refresh`` (a scheduled task) only decides how many days are fast.
"""

from __future__ import annotations

from decimal import Decimal

from django.db import models
from django.utils.translation import gettext_lazy as _


class CallDayRollup(models.Model):
    day = models.DateField()
    tz = models.CharField(max_length=64, help_text="The time zone the day is read in (TIME_ZONE when it was computed).")
    dim = models.CharField(max_length=20, help_text=_("'total', or the breakdown: source, campaign, handler, tracking_number, ..."))
    key = models.CharField(max_length=200, blank=True, help_text="The party's id or the value; '' for calls without one.")
    calls = models.PositiveIntegerField(default=0)
    answered = models.PositiveIntegerField(default=0)
    missed = models.PositiveIntegerField(default=0)
    blocked = models.PositiveIntegerField(default=0)
    live = models.PositiveIntegerField(default=0)
    converted = models.PositiveIntegerField(default=0)
    failsafe = models.PositiveIntegerField(default=0)
    talk_time = models.PositiveBigIntegerField(default=0)
    revenue = models.DecimalField(max_digits=14, decimal_places=2, default=Decimal("0"))
    payout = models.DecimalField(max_digits=14, decimal_places=2, default=Decimal("0"))
    computed_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tz", "dim", "day", "key"], name="call_day_rollup_unique")]

    def __str__(self) -> str:
        return f"{self.day} {self.dim}={self.key}: {self.calls} calls"


class CallRollupDirty(models.Model):
    """A call of this moment's day changed after its day was rolled up (written by the database trigger)."""

    at = models.DateTimeField(db_index=True, help_text="The changed call's started_at.")

    def __str__(self) -> str:
        return f"dirty {self.at:%Y-%m-%d %H:%M}"
