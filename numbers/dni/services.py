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
* A hold is pushed forward at most every :func:`refresh_seconds`; the number's stamp and the
  session's expiry always move together, so "number free" and "session expired" are one instant.

Speed (bench/dni.py, bench/profile_dni.py): on PostgreSQL a returning visitor (page view or heartbeat) costs one
statement and one round trip, and a new visitor two round trips, whether the pool has a free number or overflows
(plain SQL with data-modifying CTEs; with CALLTRACK_DNI_ASYNC_COMMIT the commit does not wait for the WAL flush).
Every statement is prepared once per connection (``calltrack.fastdb.fixed_cursor``): PostgreSQL spent more time
planning them than running them. The first, which every request runs, also re-checks the pool settings the worker
kept (:mod:`calltrack.numbers.dni.pools`) and serves as the connection's health check (``fastdb.fetchone_first``).
A new visitor's second round trip is one statement: it takes the visitor's advisory lock, checks with a fresh
snapshot that the visitor's other tab opened no session meanwhile (the SQL function ``dni_visitor_first``: a
VOLATILE function's query sees what was committed while the statement waited for the lock), picks a free number
tier by tier, or counts the overflow and takes over the oldest takeable number (or none), and opens the session.
Elsewhere (SQLite) the same rules run as ORM queries in one transaction.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from calltrack import metrics, phone
from calltrack.fastdb import fetchone_first, fixed_cursor
from calltrack.numbers.dni import geo
from calltrack.numbers.dni.matching import ANY, Tier, candidate_tiers
from calltrack.numbers.dni.pools import POOL_IS_CURRENT, StalePool
from calltrack.numbers.models import (
    NumberKind,
    NumberPool,
    NumberSession,
    NumberStatus,
    OverflowPolicy,
    PoolNumberType,
    TrackingNumber,
)

logger = logging.getLogger(__name__)

#: Query parameters of the page the tag reports and a session keeps: UTM parameters and ad click ids.
MARKETING_KEYS = (
    "utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content", "utm_id",
    "gclid", "gbraid", "wbraid", "fbclid", "msclkid",
    # Not a query parameter: GA4's client id, which the tag reads from the _ga cookie (sent back with conversions).
    "ga_client_id",
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
    # Asked once, just before this visit would open a new session (the view's per-IP limit of new sessions):
    # False gives the pool's fallback number without a session.
    may_open: Callable[[], bool] | None = None


@dataclass(frozen=True)
class Assignment:
    """The number a visitor sees: ``number`` is None when the page must keep its own number.

    ``session_id`` is None for an answer that opened no session (:func:`fallback_assignment`)."""

    session_id: int | None
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


def fallback_assignment(*, pool: NumberPool, visit: Visit, now: datetime | None = None) -> Assignment:
    """The pool's fallback number (none: the page keeps its own), without a session and without any write:
    for requests that may not hold a pool number (no ``Origin``: not a browser; past the per-IP limit)."""
    number = pool.fallback_number or None
    return Assignment(
        session_id=None, visitor_id=visit.visitor_id, number=number,
        formatted=_formatted(number, visit.destination_text or visit.destination),
        expires_at=now or timezone.now(), overflow=False, returning=False,
    )


def _pool_numbers(pool: NumberPool) -> QuerySet[TrackingNumber]:
    return TrackingNumber.objects.filter(pool_id=pool.pk, kind=NumberKind.POOL, status=NumberStatus.ACTIVE)


def _take_free_number(*, pool: NumberPool, tiers: list[Tier], now: datetime) -> TrackingNumber | None:
    """Lock and return the least recently assigned free number of the first tier that has one."""
    free_since = now - timedelta(seconds=pool.session_lifetime)
    free = Q(last_assigned_at__isnull=True) | Q(last_assigned_at__lte=free_since)
    row_locks = connection.features.has_select_for_update_skip_locked
    for tier in tiers:
        # Without row locks (SQLite) a few candidates are read so a lost race moves on to the next.
        candidates = list(
            _pool_numbers(pool)
            .filter(tier.q, free)
            .order_by(F("last_assigned_at").asc(nulls_first=True), "id")
            .select_for_update(skip_locked=True, of=("self",))
            .only("id", "number", "current_session_id", "last_assigned_at")[: 1 if row_locks else 5]
        )
        for candidate in candidates:
            # Under the row lock the number is ours (the caller stamps it); without one, the row count says who won.
            if row_locks or TrackingNumber.objects.filter(Q(pk=candidate.pk) & free).update(last_assigned_at=now):
                return candidate
    return None


def _take_oldest_number(*, pool: NumberPool, tiers: list[Tier], now: datetime) -> TrackingNumber | None:
    """Overflow "reuse": the least recently assigned number of the first tier the pool has at all, among the pool's
    TAKEOVER_CANDIDATES least recently assigned numbers (one shown more recently is in use by an active visitor) whose
    session is at least CALLTRACK_DNI_TAKEOVER_MIN_AGE old (or over): a fresh visitor's number is never taken, so a
    script opening sessions cannot steal the credit of a live visitor's call."""
    old_enough = now - timedelta(seconds=settings.CALLTRACK_DNI_TAKEOVER_MIN_AGE)
    takeable = (
        Q(current_session__isnull=True) | Q(current_session__started_at__lte=old_enough) | Q(current_session__expires_at__lte=now)
    )
    lru = (F("last_assigned_at").asc(nulls_first=True), "id")
    candidates = list(_pool_numbers(pool).order_by(*lru).values_list("id", flat=True)[:TAKEOVER_CANDIDATES])
    for tier in tiers:
        candidate = (
            _pool_numbers(pool)
            .filter(tier.q, takeable, pk__in=candidates)
            .order_by(*lru)
            .select_for_update(skip_locked=True, of=("self",))
            .only("id", "number", "current_session_id", "last_assigned_at")
            .first()
        )
        if candidate is not None:
            return candidate
    return None


def _session_fields(visit: Visit) -> dict[str, Any]:
    return {
        "page_url": visit.page_url,
        "landing_page": visit.page_url,
        "referrer": visit.referrer,
        "marketing_data": dict(visit.marketing_data),
        "destination_number": visit.destination,
        "ip_address": visit.ip_address,
    }


@dataclass
class _LiveSession:
    """A visitor's live session as the hot path reads it: one narrow row, no model instance."""

    id: int
    tracking_number_id: int | None
    marketing_data: dict[str, Any]
    is_overflow: bool
    visitor_id: str
    stale: bool = True  # its hold was last extended more than refresh_seconds ago
    expires_at: datetime | None = None


def refresh_seconds(pool: NumberPool) -> int:
    """How often a visitor's page views and heartbeats actually push its hold forward.

    Extending on every request would rewrite the number's and the session's indexed columns each
    time (no HOT update); within this interval a request only records ``last_seen_at``. The number
    stamp and the session expiry always move together, so "number free" and "session expired" stay
    the same instant; a session lives at least ``lifetime - refresh`` after the visitor's last request.
    """
    return max(1, min(60, pool.session_lifetime // 10))


# The hot path of a public endpoint, in plain SQL: the ORM's query compilation cost more than the
# queries themselves (measured with bench/dni.py). Portable between PostgreSQL and SQLite (>= 3.35).
_S = NumberSession._meta.db_table
_T = TrackingNumber._meta.db_table
_SESSION_COLUMNS = "id, tracking_number_id, marketing_data, is_overflow, visitor_id, expires_at < %s AS stale, expires_at"
# A visitor holds one session per destination of the pool: the number shown for the Denver store routes to Denver,
# the one shown for Boulder (another page, or the same page's second destination) to Boulder. A page that names no
# destination takes the visitor's latest session, whatever its destination.
_OF_DESTINATION = "(%s = '' OR destination_number = %s)"
_LIVE_SESSION_OF_VISITOR = (
    f"SELECT {_SESSION_COLUMNS} FROM {_S} WHERE pool_id = %s AND visitor_id = %s AND expires_at > %s "
    f"AND {_OF_DESTINATION} ORDER BY started_at DESC, id DESC LIMIT 1"
)
_LIVE_SESSION_BY_ID = f"SELECT {_SESSION_COLUMNS} FROM {_S} WHERE id = %s AND pool_id = %s AND visitor_id = %s AND expires_at > %s"
_HOLDS = (
    f"SELECT number FROM {_T} WHERE id = %s AND current_session_id = %s AND pool_id = %s "
    f"AND kind = '{NumberKind.POOL}' AND status = '{NumberStatus.ACTIVE}'"
)
# Extends the hold only while the number still names this session as its holder (see the module docstring).
_EXTEND_HOLD = (
    f"UPDATE {_T} SET last_assigned_at = %s WHERE id = %s AND current_session_id = %s AND pool_id = %s "
    f"AND kind = '{NumberKind.POOL}' AND status = '{NumberStatus.ACTIVE}' RETURNING number"
)


def _fetch_live(sql: str, params: list[Any]) -> _LiveSession | None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    return _live_session(row)


def _live_session(row: tuple[Any, ...] | None) -> _LiveSession | None:
    if row is None:
        return None
    return _LiveSession(
        id=row[0], tracking_number_id=row[1], marketing_data=_json(row[2]), is_overflow=bool(row[3]), visitor_id=row[4],
        stale=bool(row[5]), expires_at=_aware(row[6]),
    )


def _aware(value: Any) -> datetime:
    """A timestamp read with plain SQL: SQLite gives it naive (UTC) or as text."""
    if isinstance(value, str):
        value = parse_datetime(value)
    return value if timezone.is_aware(value) else timezone.make_aware(value, UTC)


def _refresh_before(pool: NumberPool, now: datetime) -> Any:
    """Sessions expiring before this instant are due for a refresh of their hold."""
    return connection.ops.adapt_datetimefield_value(now + timedelta(seconds=pool.session_lifetime - refresh_seconds(pool)))


def _json(value: Any) -> dict[str, Any]:
    """A JSON column read with plain SQL: Django's drivers hand it back as text (PostgreSQL too)."""
    if isinstance(value, str | bytes):
        value = json.loads(value)
    return value or {}


def _extend(*, pool: NumberPool, session: _LiveSession, visit: Visit | None, now: datetime) -> tuple[bool, str | None, datetime]:
    """Record the visit; when the hold is due (:func:`refresh_seconds`), push it and the expiry to ``now + lifetime``.

    Answers (still held, the number it shows, the session's expiry). Not held: the
    number was taken over (or left the pool); the session ends now and the visitor needs a new number.
    """
    stamp = connection.ops.adapt_datetimefield_value(now)
    number: str | None = pool.fallback_number or None
    if session.tracking_number_id is not None:
        with connection.cursor() as cursor:
            if session.stale:
                cursor.execute(_EXTEND_HOLD, [stamp, session.tracking_number_id, session.id, pool.pk])
            else:
                cursor.execute(_HOLDS, [session.tracking_number_id, session.id, pool.pk])
            row = cursor.fetchone()
        if row is None:
            NumberSession.objects.filter(pk=session.id, expires_at__gt=now).update(expires_at=now)
            return False, None, now
        number = row[0]
    expires_at = now + timedelta(seconds=pool.session_lifetime) if session.stale else session.expires_at
    changes: dict[str, Any] = {"expires_at": expires_at} if session.stale else {}
    if visit is not None:
        if visit.page_url:
            changes["page_url"] = visit.page_url
        if visit.marketing_data and visit.marketing_data != session.marketing_data:
            # A new ad click during the session: the latest touch is what a call will be credited to.
            changes.update(marketing_data=dict(visit.marketing_data), landing_page=visit.page_url, referrer=visit.referrer)
    if "marketing_data" in changes:
        NumberSession.objects.filter(pk=session.id).update(last_seen_at=now, **changes)
    else:
        if "expires_at" in changes:
            changes["expires_at"] = connection.ops.adapt_datetimefield_value(expires_at)
        columns = ["last_seen_at = %s"] + [f"{name} = %s" for name in changes]
        params = [stamp, *changes.values(), session.id]
        with connection.cursor() as cursor:
            cursor.execute(f"UPDATE {_S} SET {', '.join(columns)} WHERE id = %s", params)
    return True, number, expires_at


def _visitor_key(pool: NumberPool, visitor_id: str) -> int:
    """The advisory lock key of one visitor of one pool."""
    digest = hashlib.blake2b(f"dni:{pool.pk}:{visitor_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def _begin(pool: NumberPool, visitor_id: str | None) -> None:
    """First statement of a DNI transaction on PostgreSQL: relax the commit, lock the visitor. One round trip.

    DNI sessions are short-lived and re-created on the next page view, so CALLTRACK_DNI_ASYNC_COMMIT
    may let the commit skip the WAL flush: a PostgreSQL crash may then forget the last fraction of a
    second of assignments (it never corrupts anything nor weakens the locks: only durability changes).
    Off by default: durability first, speed by choice.

    The advisory lock of (pool, visitor) serializes one visitor's requests until the transaction
    ends: two tabs opened at once must not give one visitor two numbers. SQLite needs neither:
    its transactions here are BEGIN IMMEDIATE, one writer at a time.
    """
    if connection.vendor != "postgresql":
        return
    parts, params = [], []
    if settings.CALLTRACK_DNI_ASYNC_COMMIT:
        parts.append("set_config('synchronous_commit', 'off', true)")
    if visitor_id is not None:
        parts.append("pg_advisory_xact_lock(%s)")
        params.append(_visitor_key(pool, visitor_id))
    if parts:
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT {', '.join(parts)}", params)


# PostgreSQL, a returning visitor: find the live session, extend the number's hold and the session in one
# statement (one round trip, no BEGIN/COMMIT of their own). Same conditions as _extend: the session is
# extended only if it holds no number (fallback) or still holds its number. Constant text, prepared once
# per connection (fixed_cursor); with CALLTRACK_DNI_ASYNC_COMMIT (``relax``) it also relaxes its own commit.
_PG_EXTEND = f"""
WITH ok AS (SELECT {POOL_IS_CURRENT} AS current),
s AS (
    SELECT id, tracking_number_id, marketing_data, is_overflow, visitor_id, expires_at < %(refresh_before)s AS stale FROM {_S}
    WHERE {{where}} AND expires_at > %(now)s AND (SELECT current FROM ok) ORDER BY started_at DESC, id DESC LIMIT 1
), n AS (
    UPDATE {_T} t SET last_assigned_at = %(now)s FROM s
    WHERE s.stale AND t.id = s.tracking_number_id AND t.current_session_id = s.id AND t.pool_id = %(pool)s
      AND t.kind = '{NumberKind.POOL}' AND t.status = '{NumberStatus.ACTIVE}'
    RETURNING t.number
), h AS (
    SELECT t.number FROM {_T} t, s
    WHERE NOT s.stale AND t.id = s.tracking_number_id AND t.current_session_id = s.id AND t.pool_id = %(pool)s
      AND t.kind = '{NumberKind.POOL}' AND t.status = '{NumberStatus.ACTIVE}'
), u AS (
    UPDATE {_S} x SET last_seen_at = %(now)s,
        expires_at = CASE WHEN s.stale THEN %(expires)s ELSE x.expires_at END,
        page_url = CASE WHEN %(page)s = '' THEN x.page_url ELSE %(page)s END
    FROM s WHERE x.id = s.id AND (s.tracking_number_id IS NULL OR EXISTS (SELECT 1 FROM n) OR EXISTS (SELECT 1 FROM h))
    RETURNING x.expires_at
)
SELECT s.id, s.tracking_number_id, s.marketing_data, s.is_overflow, s.visitor_id,
    COALESCE((SELECT number FROM n), (SELECT number FROM h)), (SELECT expires_at FROM u),
    (SELECT set_config('synchronous_commit', 'off', true) WHERE %(relax)s), ok.current
FROM ok LEFT JOIN s ON TRUE
"""
_PG_EXTEND_VISITOR = _PG_EXTEND.format(
    where="pool_id = %(pool)s AND visitor_id = %(visitor)s AND (%(destination)s = '' OR destination_number = %(destination)s)"
)
_PG_EXTEND_SESSION = _PG_EXTEND.format(where="id = %(session)s AND pool_id = %(pool)s AND visitor_id = %(visitor)s")


def _one_statement_extend(*, sql: str, pool: NumberPool, params: dict[str, Any], page_url: str, now: datetime):
    """Run _PG_EXTEND; (None, None) where it cannot run, else (session or None, (held, number, expires_at)).

    Raises :class:`StalePool` when ``pool`` (kept settings: ``PoolSettings.version``) is no longer the pool's."""
    if connection.vendor != "postgresql":
        return None, None
    expires_at = now + timedelta(seconds=pool.session_lifetime)
    # In autocommit mode the statement is its own transaction, so set_config(..., true) inside it relaxes only its commit.
    relax = connection.get_autocommit() and settings.CALLTRACK_DNI_ASYNC_COMMIT
    # Usually the request's first statement, and harmless to repeat (it extends a session): it is the connection's
    # health check too (fetchone_first).
    row = fetchone_first(
        sql,
        {**params, "pool": pool.pk, "now": now, "expires": expires_at, "page": page_url, "relax": relax,
         "refresh_before": now + timedelta(seconds=pool.session_lifetime - refresh_seconds(pool)),
         "pool_version": getattr(pool, "version", "")},
    )
    assert row is not None  # FROM ok: always one row
    if not row[8]:
        raise StalePool(pool.key)  # nothing was written
    if row[0] is None:
        return None, (False, None, now)
    session = _LiveSession(id=row[0], tracking_number_id=row[1], marketing_data=_json(row[2]), is_overflow=row[3], visitor_id=row[4])
    number = row[5] if row[1] is not None else (pool.fallback_number or None)
    return session, (row[6] is not None, number, row[6])


def number_assign(*, pool: NumberPool, visit: Visit, now: datetime | None = None) -> Assignment:
    """The number ``visit.visitor_id`` is shown on this page; every call extends the visitor's session.

    A returning visitor with a live session for the page's destination keeps its number (and the session is
    extended); another destination (another store's page, a page's second number) gets a session and a number
    of its own, so a call to each number goes to the destination it was shown for. A new
    visitor takes the least recently assigned free number, type for type (see
    :func:`candidate_tiers`). With no free number the pool overflows: the overflow is counted on
    the pool and the policy either reuses the least recently assigned number (the displaced
    session ends, the newest visitor gets the credit) or shows the fallback number (no number at
    all when the pool has none: the page keeps its own).

    Locks, all inside one transaction: an advisory lock of (pool, visitor) on PostgreSQL, then the
    number row (``FOR UPDATE SKIP LOCKED``), and the pool row only to count an overflow. Not
    idempotent: each call is a page view.
    """
    now = now or timezone.now()
    session, outcome = _one_statement_extend(
        sql=_PG_EXTEND_VISITOR, pool=pool, params={"visitor": visit.visitor_id, "destination": visit.destination},
        page_url=visit.page_url, now=now,
    )
    if session is not None and outcome[0]:
        if visit.marketing_data and visit.marketing_data != session.marketing_data:
            # A new ad click during the session: the latest touch is what a call will be credited to.
            NumberSession.objects.filter(pk=session.id).update(
                marketing_data=dict(visit.marketing_data), landing_page=visit.page_url, referrer=visit.referrer
            )
        return Assignment(
            session_id=session.id, visitor_id=session.visitor_id, number=outcome[1],
            formatted=_formatted(outcome[1], visit.destination_text or visit.destination),
            expires_at=outcome[2], overflow=session.is_overflow, returning=True,
        )
    admitted = False
    if session is None and outcome is not None:
        if visit.may_open is not None and not visit.may_open():
            return fallback_assignment(pool=pool, visit=visit, now=now)
        admitted = True
        # PostgreSQL, no live session: a new visitor (on a free number, or the pool overflows) is served by one more
        # round trip.
        tiers = candidate_tiers(pool=pool, destination=visit.destination)
        opened = _pg_open_assignment(pool=pool, tiers=tiers, visit=visit, now=now, first_visit=True, returning=False)
        if opened is not None:
            return opened
    # A visitor whose number was taken over (the path below ends its session), a visitor whose other tab just
    # opened a session, or not PostgreSQL.
    with transaction.atomic():
        session = _begin_and_fetch(pool, visit.visitor_id, now, visit.destination)
        if session is not None:
            held, number, expires_at = _extend(pool=pool, session=session, visit=visit, now=now)
            if held:
                return Assignment(
                    session_id=session.id, visitor_id=session.visitor_id, number=number,
                    formatted=_formatted(number, visit.destination_text or visit.destination),
                    expires_at=expires_at, overflow=session.is_overflow, returning=True,
                )
        if not admitted and visit.may_open is not None and not visit.may_open():
            return fallback_assignment(pool=pool, visit=visit, now=now)
        return _assign_new(pool=pool, visit=visit, now=now, returning=session is not None)


def _client_binding() -> bool:
    """PostgreSQL with client-side parameter binding (Django's default): several statements may go in one round trip."""
    return connection.vendor == "postgresql" and not connection.settings_dict.get("OPTIONS", {}).get("server_side_binding")


def _begin_and_fetch(pool: NumberPool, visitor_id: str, now: datetime, destination: str) -> _LiveSession | None:
    """_begin, then the visitor's live session for ``destination`` (any when ''): one round trip on PostgreSQL.

    The lookup is a statement of its own, so (READ COMMITTED) it sees whatever another tab of the
    visitor committed before the advisory lock was ours.
    """
    params = [_refresh_before(pool, now), pool.pk, visitor_id, connection.ops.adapt_datetimefield_value(now), destination, destination]
    if not _client_binding():
        _begin(pool, visitor_id)
        return _fetch_live(_LIVE_SESSION_OF_VISITOR, params)
    relax = "set_config('synchronous_commit', 'off', true), " if settings.CALLTRACK_DNI_ASYNC_COMMIT else ""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {relax}pg_advisory_xact_lock(%s); {_LIVE_SESSION_OF_VISITOR}", [_visitor_key(pool, visitor_id), *params])
        cursor.nextset()
        row = cursor.fetchone()
    return _live_session(row)


_SESSION_INSERT_COLUMNS = (
    "pool_id, tracking_number_id, visitor_id, started_at, last_seen_at, expires_at, page_url, landing_page, "
    "referrer, destination_number, marketing_data, ip_address, is_overflow"
)


_OPEN_SQL: dict[tuple[tuple[str, ...], bool, bool], str] = {}
#: When a number was last shown, never shown being the earliest: the key of the index numbers_pool_lru_idx (migration
#: numbers 0015), which the open statement reads in order and by range.
_SHOWN = "COALESCE(last_assigned_at,'-infinity')"
#: How many of a full pool's least recently shown numbers an overflow considers taking over (the policy "reuse").
TAKEOVER_CANDIDATES = 50


def _tier_sql(tier: Tier, index: int) -> str:
    """``tier.sql`` with its positional placeholders named ``t<index>_<n>`` (the statement binds by name)."""
    parts = tier.sql.split("%s")
    return "".join(part + (f"%(t{index}_{n})s" if n < len(parts) - 1 else "") for n, part in enumerate(parts))


def _open_sql(tiers: list[Tier], any_when_none: bool, first_visit: bool) -> str:
    """The one statement that opens a new visitor's session (see :func:`_pg_open`), built once per shape.

    Kept under psycopg's 4096 characters and 50 parameters (``MAX_CACHED_STATEMENT_LENGTH``): a longer statement's
    placeholders are parsed again on every execution, which cost more CPU than the rest of the request.
    """
    key = (tuple(t.sql for t in tiers), any_when_none, first_visit)
    sql = _OPEN_SQL.get(key)
    if sql is not None:
        return sql
    numbers = f"FROM {_T} t WHERE pool_id=%(p)s AND kind='{NumberKind.POOL}' AND status='{NumberStatus.ACTIVE}'"
    # Least recently shown first (never shown: first of all), in the order of the index numbers_pool_lru_idx.
    lru = f"ORDER BY {_SHOWN},id LIMIT 1 FOR UPDATE SKIP LOCKED"
    conditions = [f"({_tier_sql(tier, i)})" for i, tier in enumerate(tiers)]
    # g<k>: nothing picked before the k-th pick (and, for a first visit, no live session of the visitor meanwhile).
    # A first visit takes the visitor's advisory lock, then checks with a fresh snapshot that no other request of the
    # visitor opened a session meanwhile: both in dni_visitor_first (tracking/sql/dni_visitor_first.postgresql.sql),
    # whose own query sees what was committed while this statement waited for the lock.
    ctes = [
        "g0 AS(SELECT dni_visitor_first(%(lock)s::bigint,%(relax)s::boolean,%(p)s,%(v)s,%(n)s,%(d)s) v)"
        if first_visit else "g0 AS(SELECT true v)"
    ]
    if any_when_none:
        # The pool holds no number of the destination's type at all (not merely none free): any type beats none, so the
        # last tier takes any number.
        ctes.append(f"nolast AS(SELECT NOT EXISTS(SELECT {numbers} AND {conditions[-1]}) v)")
        conditions[-1] = f"({conditions[-1]} OR (TABLE nolast))"
    # Free: not shown for a whole session lifetime. A range of that index (it ends where the numbers shown since begin),
    # so a pool with no free number costs one index probe per tier, not a walk over every number it holds.
    free = f"{_SHOWN}<=%(f)s"
    # Takeover candidates: the pool's TAKEOVER_CANDIDATES least recently shown numbers. A number shown more recently is
    # in use by an active visitor; without the bound, a pool exhausted by young sessions (a flood of new visitors: none
    # takeable) walked every number it holds, with a look-up of each holder, on every overflow.
    ctes.append(f"oc AS(SELECT id {numbers} ORDER BY {_SHOWN},id LIMIT {TAKEOVER_CANDIDATES})")
    # Overflow "reuse": the least recently assigned number of the first tier the pool has at all, among the numbers whose
    # session is at least CALLTRACK_DNI_TAKEOVER_MIN_AGE old (or over).
    # Positive, so that the re-check of a row locked after a concurrent change (READ COMMITTED) cannot pass it: a holder
    # that session committed after this statement's snapshot is invisible here, so its number is not takeable.
    # A scalar subquery, not EXISTS: under the OR, PostgreSQL may run an EXISTS as a "hashed SubPlan", which reads and
    # hashes every session of the install old enough (each page view ever made: sessions are never deleted) on every
    # overflow. A scalar subquery is one look-up by the holder's primary key per number the walk visits. No visible
    # holder (NULL): not takeable.
    takeable = (
        f"%(tk)s AND t.id IN(TABLE oc)AND(t.current_session_id IS NULL OR (SELECT c.started_at<=%(o)s OR c.expires_at<=%(n)s "
        f"FROM {_S} c WHERE c.id=t.current_session_id))"
    )
    picks = []
    k = 0
    for i, condition in enumerate(conditions):
        name = f"f{i}"
        ctes.append(f"{name} AS(SELECT id,number,current_session_id {numbers} AND {condition} AND {free} AND(TABLE g{k}) {lru})")
        ctes.append(f"g{k + 1} AS(SELECT v AND NOT EXISTS(TABLE {name})v FROM g{k})")
        picks.append(f"SELECT *,false FROM {name}")
        k += 1
    # One pick for every tier: the candidates of the first tier that has a takeable one come first, then least recently
    # shown first (the order of the free picks above, tier by tier, over the candidates only).
    ranks = "".join(f"NOT{condition}," for condition in conditions[:-1])
    ctes.append(
        f"o AS(SELECT id,number,current_session_id {numbers} AND({' OR '.join(conditions)})AND {takeable} AND(TABLE g{k}) "
        f"ORDER BY {ranks}{lru.removeprefix('ORDER BY ')})"
    )
    ctes.append(f"g{k + 1} AS(SELECT v AND NOT EXISTS(TABLE o)v FROM g{k})")
    picks.append("SELECT *,true FROM o")
    k += 1
    # Overflow with no number to take: a session without a number (the fallback number, or the page's own).
    picks.append(f"SELECT NULL,NULL,NULL,true WHERE %(ov)s AND(TABLE g{k})")
    ctes.append(f"pick(id,number,holder,ov) AS({' UNION ALL '.join(picks)})")
    ctes.append(
        f"ins AS(INSERT INTO {_S}({_SESSION_INSERT_COLUMNS.replace(' ', '')}) SELECT %(p)s,pick.id,%(v)s,%(n)s,%(n)s,%(e)s,%(pg)s,%(pg)s,"
        "%(r)s,%(d)s,%(m)s::jsonb,%(ip)s::inet,pick.ov FROM pick RETURNING id,tracking_number_id,is_overflow)"
    )
    ctes.append(f"hold AS(UPDATE {_T} t SET last_assigned_at=%(n)s,current_session_id=ins.id FROM ins WHERE t.id=ins.tracking_number_id)")
    # The previous holder's session ends now if it was still live (a reused number, or a session lifetime shortened since).
    ctes.append(f"prev AS(UPDATE {_S} x SET expires_at=%(n)s FROM pick WHERE x.id=pick.holder AND x.expires_at>%(n)s)")
    ctes.append(f"counted AS(UPDATE {NumberPool._meta.db_table} p SET overflow_count=p.overflow_count+1 FROM ins WHERE p.id=%(p)s AND ins.is_overflow)")
    sql = "WITH " + ",".join(ctes) + " SELECT ins.id,pick.number,ins.is_overflow FROM ins,pick"
    _OPEN_SQL[key] = sql
    return sql


def _pg_open(
    *, pool: NumberPool, tiers: list[Tier], visit: Visit, now: datetime, first_visit: bool = False, overflow: bool = True
) -> tuple[int, str | None, bool] | None:
    """PostgreSQL: open the visitor's session in one prepared statement: on the least recently assigned free number of
    the first tier that has one; else (``overflow``) the pool overflows: the overflow is counted on the pool and,
    with the policy "reuse the oldest", the least recently assigned takeable number of the first tier the pool has
    is taken over (its holder's session ends), or no number at all. The number is stamped with its new holder.
    (session id, number or None, overflow), or None when no session was opened (``overflow`` False and no free
    number; or ``first_visit`` and another request of the visitor opened a session meanwhile).

    ``first_visit``: called outside the assignment's transaction (autocommit: the statement is its transaction)
    for a visitor without a live session. The statement takes the visitor's advisory lock (and relaxes its commit)
    and checks, with a snapshot taken once the lock is ours, that no other request of the visitor opened a session
    meanwhile (``dni_visitor_first``): then it opens nothing. Otherwise the caller's transaction holds the lock
    already.
    """
    any_when_none = pool.number_type == PoolNumberType.MATCH and tiers[-1] is not ANY
    params: dict[str, Any] = {
        "p": pool.pk, "v": visit.visitor_id, "n": now, "d": visit.destination,
        "f": now - timedelta(seconds=pool.session_lifetime),
        "o": now - timedelta(seconds=settings.CALLTRACK_DNI_TAKEOVER_MIN_AGE),
        "ov": overflow, "tk": overflow and pool.overflow_policy == OverflowPolicy.REUSE_OLDEST,
        "e": now + timedelta(seconds=pool.session_lifetime), "pg": visit.page_url, "r": visit.referrer,
        "m": json.dumps(visit.marketing_data), "ip": visit.ip_address,
    }
    for i, tier in enumerate(tiers):
        for n, value in enumerate(tier.params):
            params[f"t{i}_{n}"] = value
    if first_visit:
        params["lock"] = _visitor_key(pool, visit.visitor_id)
        params["relax"] = connection.get_autocommit() and settings.CALLTRACK_DNI_ASYNC_COMMIT
    sql = _open_sql(tiers, any_when_none, first_visit)
    with fixed_cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    if row is None:
        return None
    if row[2]:
        metrics.pool_overflowed(pool.overflow_policy)
        logger.info("pool %s overflowed (policy %s): every number is in use", pool.key, pool.overflow_policy)
    return row[0], row[1], bool(row[2])


def _pg_open_assignment(
    *, pool: NumberPool, tiers: list[Tier], visit: Visit, now: datetime, first_visit: bool, returning: bool
) -> Assignment | None:
    opened = _pg_open(pool=pool, tiers=tiers, visit=visit, now=now, first_visit=first_visit)
    if opened is None:
        return None
    session_id, number, overflow = opened
    if number is None:
        number = pool.fallback_number or None
    return Assignment(
        session_id=session_id, visitor_id=visit.visitor_id, number=number,
        formatted=_formatted(number, visit.destination_text or visit.destination),
        expires_at=now + timedelta(seconds=pool.session_lifetime), overflow=overflow, returning=returning,
    )


def _open_on_free_number(*, pool: NumberPool, tiers: list[Tier], visit: Visit, now: datetime, returning: bool) -> Assignment | None:
    """A session on the best free number of the first tier that has one; None when no tier has (not PostgreSQL)."""
    number = _take_free_number(pool=pool, tiers=tiers, now=now)
    if number is None:
        return None
    return _open_session(pool=pool, number=number, visit=visit, now=now, overflow=False, returning=returning)


def _open_session(
    *, pool: NumberPool, number: TrackingNumber | None, visit: Visit, now: datetime, overflow: bool, returning: bool
) -> Assignment:
    session = NumberSession.objects.create(
        pool_id=pool.pk,
        tracking_number=number,
        visitor_id=visit.visitor_id,
        started_at=now,
        last_seen_at=now,
        expires_at=now + timedelta(seconds=pool.session_lifetime),
        is_overflow=overflow,
        **_session_fields(visit),
    )
    if number is not None:
        TrackingNumber.objects.filter(pk=number.pk).update(last_assigned_at=now, current_session=session)
        if number.current_session_id is not None:
            # The previous holder's session ends now if it was still live (a reused number, or a
            # session lifetime shortened since): one number, one live session.
            NumberSession.objects.filter(pk=number.current_session_id, expires_at__gt=now).update(expires_at=now)
    return _assignment(session, number.number if number else pool.fallback_number or None, visit=visit, returning=returning)


def _assign_new(*, pool: NumberPool, visit: Visit, now: datetime, returning: bool) -> Assignment:
    tiers = candidate_tiers(pool=pool, destination=visit.destination)
    if connection.vendor == "postgresql":
        # The same rules in one statement (the caller's transaction holds the visitor's lock).
        opened = _pg_open_assignment(pool=pool, tiers=tiers, visit=visit, now=now, first_visit=False, returning=returning)
        assert opened is not None  # an overflow always opens a session
        return opened
    opened = _open_on_free_number(pool=pool, tiers=tiers, visit=visit, now=now, returning=returning)
    if opened is not None:
        return opened
    if pool.number_type == PoolNumberType.MATCH and tiers[-1] is not ANY:
        # The pool holds no number of the destination's type at all (not merely none free): any type beats none.
        if not _pool_numbers(pool).filter(tiers[-1].q).exists():
            tiers = [ANY]
            opened = _open_on_free_number(pool=pool, tiers=tiers, visit=visit, now=now, returning=returning)
            if opened is not None:
                return opened
    NumberPool.objects.filter(pk=pool.pk).update(overflow_count=F("overflow_count") + 1)
    metrics.pool_overflowed(pool.overflow_policy)
    logger.info("pool %s overflowed (policy %s): every number is in use", pool.key, pool.overflow_policy)
    number = None
    if pool.overflow_policy == OverflowPolicy.REUSE_OLDEST:
        number = _take_oldest_number(pool=pool, tiers=tiers, now=now)
    return _open_session(pool=pool, number=number, visit=visit, now=now, overflow=True, returning=returning)


def session_heartbeat(*, pool: NumberPool, visitor_id: str, session_id: int, now: datetime | None = None) -> Assignment | None:
    """Extend a live session of ``visitor_id``; None when it has ended (expired or its number taken over).

    Locks the number row for the conditional update. Idempotent enough: a repeated heartbeat only
    moves the expiry a little further.
    """
    now = now or timezone.now()
    session, outcome = _one_statement_extend(
        sql=_PG_EXTEND_SESSION, pool=pool, params={"visitor": visitor_id, "session": session_id}, page_url="", now=now
    )
    if outcome is not None:
        if session is None:
            return None
        held, number, expires_at = outcome
        if not held:
            NumberSession.objects.filter(pk=session.id, expires_at__gt=now).update(expires_at=now)
            return None
        return Assignment(
            session_id=session.id, visitor_id=session.visitor_id, number=number, formatted=_formatted(number, ""),
            expires_at=expires_at, overflow=session.is_overflow, returning=True,
        )
    with transaction.atomic():
        _begin(pool, None)
        session = _fetch_live(
            _LIVE_SESSION_BY_ID, [_refresh_before(pool, now), session_id, pool.pk, visitor_id, connection.ops.adapt_datetimefield_value(now)]
        )
        if session is None:
            return None
        held, number, expires_at = _extend(pool=pool, session=session, visit=None, now=now)
    if not held:
        return None
    return Assignment(
        session_id=session.id, visitor_id=session.visitor_id, number=number, formatted=_formatted(number, ""),
        expires_at=expires_at, overflow=session.is_overflow, returning=True,
    )
