"""Cap counters: each handler's counted calls in its current hour/day/month and ever, without recounting history.

Every change to what counts toward a handler's caps (an attempt counted or uncounted, a call's revenue side
converted or not, a row deleted) is appended to ``CapDelta`` by database triggers (migration
``tracking.0006``), in the same transaction as the change: nothing in Python can forget one, and appending
takes no lock that another call waits on. ``routing.store.counters.cap_counters_fold`` (a scheduled task)
folds the deltas into one ``CapCounter`` row per handler and trigger. A cap check reads the counter plus
the deltas not folded yet: its cost follows the recent activity, not the history.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import pgettext_lazy

from tracking.models.parties import CapTrigger


class CapCounter(models.Model):
    """A handler's counted calls (connections or conversions) in the hour/day/month that started at the
    given instants, in ``zone`` (the handler's time zone when folded; another zone means recount), and ever."""

    handler = models.ForeignKey("tracking.Handler", verbose_name=pgettext_lazy("party", "handler"), on_delete=models.CASCADE, related_name="cap_counters")
    counts = models.CharField(max_length=20, choices=CapTrigger.choices)
    zone = models.CharField(max_length=64, help_text="Time zone the windows were computed in; blank until first folded.")
    hour_start = models.DateTimeField()
    day_start = models.DateTimeField()
    month_start = models.DateTimeField()
    hour = models.IntegerField(default=0)
    day = models.IntegerField(default=0)
    month = models.IntegerField(default=0)
    total = models.IntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["handler", "counts"], name="capcounter_handler_counts")]

    def __str__(self) -> str:
        return f"{self.handler_id} {self.counts}: {self.hour}/{self.day}/{self.month}/{self.total}"


class CapDelta(models.Model):
    """+1 or -1 to a handler's counted calls at ``at`` (the attempt's start, the conversion's time; null: only
    the total). Written by triggers only; a plain column for the handler, so a delta for a handler being
    deleted never blocks the deletion (the fold drops it)."""

    handler_id = models.BigIntegerField()
    counts = models.CharField(max_length=20, choices=CapTrigger.choices)
    at = models.DateTimeField(null=True)
    delta = models.SmallIntegerField()

    class Meta:
        # Covers the counter statement's grouped read of a handler's pending deltas (an index-only scan:
        # tracking/sql/cap_counters_read.postgresql.sql) and the fold's.
        indexes = [models.Index(fields=["handler_id", "counts", "at"], include=["delta"], name="capdelta_handler_counts_at")]

    def __str__(self) -> str:
        return f"{self.handler_id} {self.counts} {self.delta:+d} at {self.at}"
