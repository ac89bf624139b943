"""Reads about numbers that several parts need."""

from __future__ import annotations

from datetime import datetime, timedelta

from numbers.models import NumberSession, TrackingNumber


def session_for_call(*, tracking_number: TrackingNumber, at: datetime) -> NumberSession | None:
    """The visitor credited with a call to a pool number at ``at``.

    The latest visitor shown the number, if shown within the pool's attribution
    window (72 hours by default); ``None`` for static numbers, numbers outside a
    pool, or when the window has passed.
    """
    pool = tracking_number.pool
    if pool is None:
        return None
    window_start = at - timedelta(hours=pool.attribution_window)
    return (
        NumberSession.objects.filter(tracking_number=tracking_number, last_seen_at__gte=window_start, started_at__lte=at)
        .order_by("-started_at", "-id")
        .first()
    )
