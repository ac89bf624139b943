"""Give each web visitor one pool number, keep it while the visitor stays, and count overflows.

Concurrency (the invariant: while a pool has free numbers, no number is shown to two live sessions):

* A number is *free* when nobody was shown it for a whole session lifetime:
  ``last_assigned_at <= now - pool.session_lifetime`` (or never shown). The condition lives on the
  number's own row, so PostgreSQL re-checks it when a row it waited for changes (READ COMMITTED's
  re-check sees the new row version, never a stale snapshot of another table).
* A new visitor takes the least recently assigned free number with ``SELECT ... FOR UPDATE SKIP
  LOCKED``: concurrent visitors skip each other's rows instead of queueing on them. On SQLite the
  same query runs without row locks; the project opens SQLite transactions with ``BEGIN IMMEDIATE``,
  which serializes writers, and the conditional UPDATE that follows reports a lost race anyway.
* ``TrackingNumber.current_session`` names the session holding the number. A session is extended
  only by a conditional UPDATE on the number row that still names it; a session whose number was
  taken over (the overflow policy "reuse the oldest") is ended and its visitor gets a new number.
* Two first requests of the same visitor (two tabs) are serialized by a transaction-level advisory
  lock on PostgreSQL, so a visitor never holds two numbers.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import connection, transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone

from calltrack import phone
from numbers.dni import geo
from numbers.models import (
    NumberKind,
    NumberPool,
    NumberSession,
    NumberStatus,
    NumberType,
    OverflowPolicy,
    PoolNumberType,
    TrackingNumber,
)

logger = logging.getLogger(__name__)

#: Query parameters of the page the tag reports and a session keeps: UTM parameters and ad click ids.
MARKETING_KEYS = (
    "utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content", "utm_id",
    "gclid", "gbraid", "wbraid", "fbclid", "msclkid",
)


@dataclass(frozen=True)
class Visit:
    """What the tag tells about one page view (already validated by the view)."""

    visitor_id: str
    page_url: str = ""
    referrer: str = ""
    marketing_data: dict[str, str] = field(default_factory=dict)
    destination: str = ""  # E.164 of the page's own number, '' when the page did not say
    destination_text: str = ""  # the destination as the page wrote it, for formatting
    ip_address: str | None = None


@dataclass(frozen=True)
class Assignment:
    """The number a visitor sees: ``number`` is None when the page must keep its own number."""

    session_id: int
    visitor_id: str
    number: str | None
    formatted: str
    expires_at: datetime
    overflow: bool
    returning: bool


def _formatted(number: str | None, template: str) -> str:
    if not number:
        return ""
    return geo.format_like(template, number) if template else phone.format_national(number)


def _assignment(session: NumberSession, number: str | None, *, visit: Visit, returning: bool) -> Assignment:
    return Assignment(
        session_id=session.pk,
        visitor_id=session.visitor_id,
        number=number,
        formatted=_formatted(number, visit.destination_text or visit.destination),
        expires_at=session.expires_at,
        overflow=session.is_overflow,
        returning=returning,
    )


def _pool_numbers(pool: NumberPool) -> QuerySet[TrackingNumber]:
    return TrackingNumber.objects.filter(pool=pool, kind=NumberKind.POOL, status=NumberStatus.ACTIVE)


def _geographic() -> Q:
    return Q(number_type__in=[NumberType.LOCAL, NumberType.MOBILE])


def candidate_tiers(*, pool: NumberPool, destination: str) -> list[tuple[str, Q]]:
    """The filters to try in order, best match first: type for type, then area code, state, any.

    A toll-free destination gets toll-free numbers; a local one local numbers of its area code
    (where the pool has some free), then of its state, then any local number. The pool's
    ``number_type`` restricts the type; without a destination any number of that type fits.
    """
    wants = pool.number_type
    dest_type = phone.number_type(destination) if destination else ""
    if wants == PoolNumberType.TOLL_FREE:
        return [("toll-free", Q(number_type=NumberType.TOLL_FREE))]
    if wants == PoolNumberType.MATCH and dest_type == NumberType.TOLL_FREE:
        return [("toll-free", Q(number_type=NumberType.TOLL_FREE))]
    if wants == PoolNumberType.MATCH and not destination:
        return [("any", Q())]
    tiers: list[tuple[str, Q]] = []
    if destination and pool.match_area_code:
        area = phone.area_code(destination)
        if area:
            tiers.append((f"area code {area}", _geographic() & Q(area_code=area)))
            if destination.startswith("+1"):
                state = geo.nanp_state(area)
                others = sorted(geo.nanp_area_codes_in_state(state) - {area})
                if others:
                    tiers.append((f"state {state}", _geographic() & Q(area_code__in=others)))
    tiers.append(("local", _geographic()))
    return tiers


def _take_free_number(*, pool: NumberPool, tiers: list[tuple[str, Q]], now: datetime) -> TrackingNumber | None:
    """Lock and return the least recently assigned free number of the first tier that has one."""
    free_since = now - timedelta(seconds=pool.session_lifetime)
    free = Q(last_assigned_at__isnull=True) | Q(last_assigned_at__lte=free_since)
    for _name, tier in tiers:
        # Without row locks (SQLite) a few candidates are read so a lost race moves on to the next.
        limit = 1 if connection.features.has_select_for_update_skip_locked else 5
        candidates = list(
            _pool_numbers(pool)
            .filter(tier, free)
            .order_by(F("last_assigned_at").asc(nulls_first=True), "id")
            .select_for_update(skip_locked=True, of=("self",))
            .only("id", "number", "current_session_id", "last_assigned_at")[:limit]
        )
        for candidate in candidates:
            # The row count says who won (always us under the row lock on PostgreSQL).
            if TrackingNumber.objects.filter(Q(pk=candidate.pk) & free).update(last_assigned_at=now):
                return candidate
    return None


def _take_oldest_number(*, pool: NumberPool, tiers: list[tuple[str, Q]], now: datetime) -> TrackingNumber | None:
    """Overflow "reuse": the least recently assigned number of the first tier the pool has at all."""
    for _name, tier in tiers:
        candidate = (
            _pool_numbers(pool)
            .filter(tier)
            .order_by(F("last_assigned_at").asc(nulls_first=True), "id")
            .select_for_update(skip_locked=True, of=("self",))
            .only("id", "number", "current_session_id", "last_assigned_at")
            .first()
        )
        if candidate is not None:
            TrackingNumber.objects.filter(pk=candidate.pk).update(last_assigned_at=now)
            return candidate
    return None


def _visitor_lock(pool: NumberPool, visitor_id: str) -> None:
    """Serialize the requests of one visitor of one pool until the transaction ends (PostgreSQL)."""
    if connection.vendor != "postgresql":
        return  # SQLite transactions here are BEGIN IMMEDIATE: already one writer at a time
    digest = hashlib.blake2b(f"dni:{pool.pk}:{visitor_id}".encode(), digest_size=8).digest()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [int.from_bytes(digest, "big", signed=True)])


def _session_fields(visit: Visit) -> dict[str, Any]:
    return {
        "page_url": visit.page_url,
        "landing_page": visit.page_url,
        "referrer": visit.referrer,
        "marketing_data": dict(visit.marketing_data),
        "destination_number": visit.destination,
        "ip_address": visit.ip_address,
    }


def _extend(*, pool: NumberPool, session: NumberSession, visit: Visit | None, now: datetime) -> bool:
    """Push the session's expiry to ``now + lifetime``; False when it no longer holds its number."""
    if session.tracking_number_id is not None:
        held = TrackingNumber.objects.filter(
            pk=session.tracking_number_id, pool=pool, kind=NumberKind.POOL, status=NumberStatus.ACTIVE, current_session=session.pk
        ).update(last_assigned_at=now)
        if not held:
            NumberSession.objects.filter(pk=session.pk, expires_at__gt=now).update(expires_at=now)
            return False
    session.last_seen_at = now
    session.expires_at = now + timedelta(seconds=pool.session_lifetime)
    changes: dict[str, Any] = {"last_seen_at": session.last_seen_at, "expires_at": session.expires_at}
    if visit is not None:
        if visit.page_url:
            changes["page_url"] = session.page_url = visit.page_url
        if visit.marketing_data and visit.marketing_data != session.marketing_data:
            # A new ad click during the session: the latest touch is what a call will be credited to.
            changes["marketing_data"] = session.marketing_data = dict(visit.marketing_data)
            changes["landing_page"] = session.landing_page = visit.page_url
            changes["referrer"] = session.referrer = visit.referrer
    NumberSession.objects.filter(pk=session.pk).update(**changes)
    return True


def _number_of(session: NumberSession, pool: NumberPool) -> str | None:
    if session.tracking_number_id is not None:
        return session.tracking_number.number
    return pool.fallback_number or None


def number_assign(*, pool: NumberPool, visit: Visit, now: datetime | None = None) -> Assignment:
    """The number ``visit.visitor_id`` is shown on this page; every call extends the visitor's session.

    A returning visitor with a live session keeps its number (and the session is extended). A new
    visitor takes the least recently assigned free number, type for type (see
    :func:`candidate_tiers`). With no free number the pool overflows: the overflow is counted on
    the pool and the policy either reuses the least recently assigned number (the displaced
    session ends, the newest visitor gets the credit) or shows the fallback number (no number at
    all when the pool has none: the page keeps its own).

    Locks: an advisory lock of (pool, visitor), then the number row (``FOR UPDATE SKIP LOCKED``),
    and the pool row only to count an overflow; all inside one transaction. Not idempotent: each
    call is a page view.
    """
    now = now or timezone.now()
    with transaction.atomic():
        _visitor_lock(pool, visit.visitor_id)
        session = (
            NumberSession.objects.live(now)
            .filter(pool=pool, visitor_id=visit.visitor_id)
            .select_related("tracking_number")
            .order_by("-started_at", "-id")
            .first()
        )
        if session is not None and _extend(pool=pool, session=session, visit=visit, now=now):
            return _assignment(session, _number_of(session, pool), visit=visit, returning=True)
        return _assign_new(pool=pool, visit=visit, now=now, returning=session is not None)


def _assign_new(*, pool: NumberPool, visit: Visit, now: datetime, returning: bool) -> Assignment:
    tiers = candidate_tiers(pool=pool, destination=visit.destination)
    number = _take_free_number(pool=pool, tiers=tiers, now=now)
    if number is None and pool.number_type == PoolNumberType.MATCH and tiers[-1][0] != "any":
        # The pool holds no number of the destination's type at all (not merely none free): any type beats none.
        if not _pool_numbers(pool).filter(tiers[-1][1]).exists():
            tiers = [("any", Q())]
            number = _take_free_number(pool=pool, tiers=tiers, now=now)
    overflow = number is None
    if overflow:
        NumberPool.objects.filter(pk=pool.pk).update(overflow_count=F("overflow_count") + 1)
        logger.info("pool %s overflowed (policy %s): every number is in use", pool.key, pool.overflow_policy)
        if pool.overflow_policy == OverflowPolicy.REUSE_OLDEST:
            number = _take_oldest_number(pool=pool, tiers=tiers, now=now)
    session = NumberSession.objects.create(
        pool=pool,
        tracking_number=number,
        visitor_id=visit.visitor_id,
        started_at=now,
        last_seen_at=now,
        expires_at=now + timedelta(seconds=pool.session_lifetime),
        is_overflow=overflow,
        **_session_fields(visit),
    )
    if number is not None:
        TrackingNumber.objects.filter(pk=number.pk).update(current_session=session)
        if number.current_session_id is not None:
            # The previous holder's session ends now if it was still live (a reused number, or a
            # session lifetime shortened since): one number, one live session.
            NumberSession.objects.filter(pk=number.current_session_id, expires_at__gt=now).update(expires_at=now)
    return _assignment(session, number.number if number else pool.fallback_number or None, visit=visit, returning=returning)


def session_heartbeat(*, pool: NumberPool, visitor_id: str, session_id: int, now: datetime | None = None) -> NumberSession | None:
    """Extend a live session of ``visitor_id``; None when it has ended (expired or its number taken over).

    Locks the number row for the conditional update. Idempotent enough: a repeated heartbeat only
    moves the expiry a little further.
    """
    now = now or timezone.now()
    with transaction.atomic():
        session = (
            NumberSession.objects.live(now)
            .filter(pk=session_id, pool=pool, visitor_id=visitor_id)
            .select_related("tracking_number")
            .first()
        )
        if session is None or not _extend(pool=pool, session=session, visit=None, now=now):
            return None
    return session


def session_number(session: NumberSession) -> str | None:
    """The number a session shows: its pool number, or the pool's fallback for an overflow session."""
    return _number_of(session, session.pool)
