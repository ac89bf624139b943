"""Report rollups: the dashboard's figures per local day, kept exact on PostgreSQL.

``CallDayRollup`` holds, for one day in a time zone and one account, the day's totals (``dim="total"``) and
its totals per source, campaign, handler, tracking number, caller state and UTM value (the whole value, any
length; unique by its hash). Rollups are kept per account (an account's figures sum its rows; the install's, every
row of the zone) and per time zone (``CallRollupZone``: TIME_ZONE and the accounts' zones, each holding every
account's rows, so an account that changes its zone finds its days there). A PostgreSQL trigger (tracking/sql/call_rollup_dirty.sql) appends, for each of those zones, the moment (and
the account) of every call that is inserted, deleted or changed in a value a figure reads (not the routing state a voice webhook
writes) to ``CallRollupDirty`` in the writer's own transaction, whichever code wrote it (a late status callback,
a postback, the admin). The reporting selector
reads a day from a zone's rollups only when it has been rolled up and nothing changed since in that zone;
otherwise from the calls themselves; so the figures are exact at any moment, and ``report_rollups_refresh``
(a scheduled task) only decides how many days are fast.
"""

from __future__ import annotations

import hashlib
from decimal import Decimal

from django.db import models
from django.utils.translation import gettext_lazy as _


class CallDayRollup(models.Model):
    day = models.DateField()
    tz = models.CharField(max_length=64, help_text="The time zone the day is read in (TIME_ZONE or an account's zone).")
    #: The account whose calls these are; null: the calls no account holds. A rolled-up day always has the null
    #: account's "total" row (zeros included): the selector knows a day was rolled up in a zone by it.
    account = models.ForeignKey(
        "calltrack.Account", null=True, blank=True, on_delete=models.CASCADE, related_name="+",
        help_text="The account whose calls are summed; empty: the calls of numbers no account holds.",
    )
    dim = models.CharField(max_length=20, help_text=_("'total', or the breakdown: source, campaign, handler, tracking_number, ..."))
    key = models.TextField(blank=True, help_text="The party's id or the whole value; '' for calls without one.")
    key_hash = models.CharField(max_length=32, default="", editable=False, help_text="md5 of the key: unique per day and zone.")
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
        constraints = [models.UniqueConstraint(fields=["tz", "account", "dim", "day", "key_hash"], name="call_day_rollup_unique")]
        # The install's figures (every account) read a zone's rows by dimension and day; an account's read the unique
        # key's index (tz, account, dim, day).
        indexes = [models.Index(fields=["tz", "dim", "day"], name="call_day_rollup_tz_dim_day")]

    def __str__(self) -> str:
        return f"{self.day} {self.dim}={self.key}: {self.calls} calls"


def rollup_key_hash(key: str) -> str:
    """What makes a rollup row's key unique (a value may be longer than an index entry can hold)."""
    return hashlib.md5(key.encode(), usedforsecurity=False).hexdigest()


class CallRollupZone(models.Model):
    """A time zone rollups are kept in; each call change marks its day for every one of them."""

    tz = models.CharField(max_length=64, unique=True, help_text="The zone (TIME_ZONE of the refresh that registered it).")
    refreshed_at = models.DateTimeField(help_text="The last refresh in this zone; zones idle for a week are retired.")

    def __str__(self) -> str:
        return self.tz


class CallRollupDirty(models.Model):
    """A call of this moment's day changed after its day was rolled up in this zone (written by the trigger)."""

    at = models.DateTimeField(help_text="The changed call's started_at.")
    tz = models.CharField(max_length=64, default="", help_text="The zone whose rollups this change makes stale.")
    #: Written by the trigger (the call's own account_id), no foreign key: an account's figures read only its markers.
    account = models.ForeignKey(
        "calltrack.Account", null=True, blank=True, on_delete=models.DO_NOTHING, db_constraint=False, db_index=False,
        related_name="+", help_text="The changed call's account (empty: a call no account holds).",
    )

    class Meta:
        indexes = [models.Index(fields=["tz", "at"], name="call_rollup_dirty_tz_at")]

    def __str__(self) -> str:
        return f"dirty {self.at:%Y-%m-%d %H:%M}"
