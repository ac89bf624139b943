"""Reads about numbers that several parts need."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from calltrack.numbers.models import NumberKind, NumberSession, TrackingNumber


def session_for_call(*, tracking_number: TrackingNumber, at: datetime) -> NumberSession | None:
    """The visitor credited with a call to a pool number at ``at``.

    The rules of the seeds (RingPools): the call goes to the *latest* visitor shown the number
    before the call; a visitor keeps the credit until another visitor is shown the number, for at
    most the pool's attribution window (72 hours by default) after it was last shown. When the
    latest visitor was last shown the number longer ago than that, nobody is credited: an earlier
    visitor never is, since the latest one displaced it.

    ``None`` for static numbers, for numbers never shown, and when the window has passed. The
    window is the one of the session's pool, so a number just removed from its pool (quarantined)
    still credits its last visitor. Overflow sessions that showed the pool's fallback number hold
    no tracking number and are never credited. One query (the session with its pool).
    """
    if tracking_number.kind == NumberKind.STATIC:
        return None
    session = (
        NumberSession.objects.filter(tracking_number=tracking_number, started_at__lte=at)
        .select_related("pool")
        .order_by("-started_at", "-id")
        .first()
    )
    if session is None:
        return None
    window_start = at - timedelta(hours=session.pool.attribution_window)
    if session.last_seen_at < window_start:
        return None
    return session


@dataclass(frozen=True)
class CallAttribution:
    """Who gets the credit for a call to a tracking number, and the marketing data it carries."""

    session: NumberSession | None
    campaign_id: int | None
    source_id: int | None
    marketing_data: dict[str, Any] = field(default_factory=dict)
    landing_page: str = ""
    referrer: str = ""
    visitor_id: str = ""


def attribution_for_call(*, tracking_number: TrackingNumber, at: datetime) -> CallAttribution:
    """Everything a new Call takes from its number: campaign, source, marketing data, visitor.

    * Static number: its campaign, source and fixed marketing data, on every call.
    * Pool number shown to a visitor within the attribution window (:func:`session_for_call`):
      the visitor's marketing data (UTM parameters, click ids), landing page and referrer, the
      pool's campaign and source.
    * Pool number outside the window: the pool's campaign and source, no visitor, no data.
    """
    if tracking_number.kind == NumberKind.STATIC:
        return CallAttribution(
            session=None,
            campaign_id=tracking_number.campaign_id,
            source_id=tracking_number.source_id,
            marketing_data=dict(tracking_number.marketing_data or {}),
        )
    session = session_for_call(tracking_number=tracking_number, at=at)
    # A number removed from its pool (quarantined) keeps crediting the pool of its last visitor.
    pool = tracking_number.pool if tracking_number.pool_id else (session.pool if session else None)
    campaign_id = (pool.campaign_id if pool else None) or tracking_number.campaign_id
    source_id = (pool.source_id if pool else None) or tracking_number.source_id
    if session is None:
        return CallAttribution(session=None, campaign_id=campaign_id, source_id=source_id)
    return CallAttribution(
        session=session,
        campaign_id=campaign_id,
        source_id=source_id,
        marketing_data=dict(session.marketing_data or {}),
        landing_page=session.landing_page,
        referrer=session.referrer,
        visitor_id=session.visitor_id,
    )


@dataclass(frozen=True)
class OverflowHour:
    """One pool's overflows (visitors who found every number in use, or no number old enough to take) in one hour."""

    pool_id: int
    pool_key: str
    pool_name: str
    hour: datetime
    overflows: int


def pool_overflow_hours(*, since: datetime, until: datetime | None = None, pool_ids: list[int] | None = None) -> list[OverflowHour]:
    """Overflows per pool and hour (oldest first), counted from the overflow sessions started in [since, until).

    A session started after ``since`` also expires after it, so the filter on ``expires_at`` lets the
    (pool, expires_at) index narrow the rows; no counter on the DNI hot path.
    """
    from django.db.models import Count
    from django.db.models.functions import TruncHour
    from django.utils import timezone

    until = until or timezone.now()
    rows = NumberSession.objects.filter(is_overflow=True, started_at__gte=since, started_at__lt=until, expires_at__gte=since)
    if pool_ids is not None:
        rows = rows.filter(pool_id__in=pool_ids)
    grouped = (
        rows.annotate(hour=TruncHour("started_at"))
        .values("pool_id", "pool__key", "pool__name", "hour")
        .annotate(overflows=Count("id"))
        .order_by("hour", "pool_id")
    )
    return [
        OverflowHour(pool_id=r["pool_id"], pool_key=r["pool__key"], pool_name=r["pool__name"], hour=r["hour"], overflows=r["overflows"])
        for r in grouped
    ]


def pool_overflow_spikes(*, now: datetime | None = None, hours: int = 24, threshold: int | None = None) -> list[OverflowHour]:
    """The hours of the last ``hours`` in which a pool overflowed at least ``threshold`` times
    (CALLTRACK_DNI_OVERFLOW_SPIKE by default), most overflows first: for the pool page and the dashboard.
    A spike means the pool is too small for its traffic, or a script is opening sessions."""
    from django.conf import settings
    from django.utils import timezone

    now = now or timezone.now()
    threshold = settings.CALLTRACK_DNI_OVERFLOW_SPIKE if threshold is None else threshold
    spikes = [h for h in pool_overflow_hours(since=now - timedelta(hours=hours), until=now + timedelta(seconds=1)) if h.overflows >= threshold]
    return sorted(spikes, key=lambda h: (-h.overflows, h.hour))
