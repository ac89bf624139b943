"""The shared layer's tables: rate-limit counters kept in the database when the cache cannot increment atomically
(calltrack.ratelimit)."""

from __future__ import annotations

from django.db import models


class RateCounter(models.Model):
    """One client's count in one limit's current window: incremented by one ``INSERT ... ON CONFLICT DO UPDATE ...
    RETURNING`` (atomic on PostgreSQL and SQLite), never read then written. A row whose window has ended is reset by
    the next hit, and deleted by the ``rate_counters_purge`` task."""

    key = models.CharField(max_length=250, primary_key=True, help_text="The limit's scope, the client and the period.")
    window_end = models.BigIntegerField(db_index=True, help_text="When the counted window ends (Unix seconds).")
    hits = models.PositiveIntegerField(default=0, help_text="Requests counted in the window.")

    class Meta:
        verbose_name = "rate-limit counter"

    def __str__(self) -> str:
        return f"{self.key}: {self.hits}"
