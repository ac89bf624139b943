"""Background tasks of the shared layer (django-q2), scheduled by ``manage.py calltrack_schedules``."""

from __future__ import annotations

from calltrack.ratelimit import rate_counters_purge


def rate_counters_purge_task() -> str:
    """Delete the database rate-limit counters whose window has ended (every 10 minutes)."""
    return f"{rate_counters_purge()} ended rate-limit counters deleted"
