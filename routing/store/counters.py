"""Handlers' live counters and cap locks: the statements (load and write) behind ``routing.services.slots``.

Live counters in one aggregate statement whatever the history (``handler_loads``), the counters read with the
new call (``counter_reads_pg``), the capped handlers' rows locked in id order (``handlers_lock``), the
cap counters folded (``cap_counters_fold``) and stale slots tidied. Each statement's PostgreSQL form (arrays through
``unnest``, constant text: prepared once per connection) sits beside its portable form, and a test runs both on
PostgreSQL and compares them (tests/routing/test_store_parity.py)."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from dataclasses import replace as dataclass_replace
from datetime import datetime
from typing import Any

from django.db import connection, transaction
from django.db.models import Count, F, Q, Sum
from django.utils import timezone

from calltrack import fastdb
from routing import decision as dec
from tracking.models import (
    Call,
    CallAttempt,
    CapCounter,
    CapDelta,
    CapTrigger,
    Handler,
)

# Per handler, as the counter statement reads it: slots held now, whether its counter is usable ("fresh"), its counted
# calls this hour/day/month/ever (counter plus pending deltas), and how many deltas are pending (not folded yet).
CounterRow = tuple[int, bool, int, int, int, int, int]

# Past this many pending deltas in one read (the task cluster stopped or behind), the handlers read are folded
# there and then (``cap_counters_fold`` of those handlers): the next calls read their counters, not the backlog.
# About 0.1 ms of index reads at most per call below it; one fold (a few ms per thousand deltas) above it.
FOLD_INLINE_PENDING = 1000


def _window_q(options: Iterable[dec.HandlerOption], at: datetime, period: str, field: str) -> Q:
    """started_at (or ``field``) inside each handler's current hour/day/month, grouped by time zone."""
    by_zone: dict[str, list[int]] = defaultdict(list)
    for o in options:
        by_zone[o.timezone].append(o.id)
    q: Q | None = None
    for zone_name, ids in by_zone.items():
        start = getattr(dec.period_starts(zone_name, at), period)
        cond = Q(handler_id__in=ids, **{f"{field}__gte": start})
        q = cond if q is None else q | cond
    assert q is not None, "at least one handler"
    return q


def handler_loads(*, options: Iterable[dec.HandlerOption], at: datetime, all_in_progress: bool = False) -> dict[int, dec.HandlerLoad]:
    """Live counters for the given handlers, in one statement whatever the history. Handlers without caps are
    left out unless ``all_in_progress`` (least connected).

    Calls in progress are attempts holding a slot whose expiry has not passed (a lost callback cannot hold a
    slot forever). Connections counted toward the period caps are attempts marked ``counted``: set when the
    slot is taken and cleared when the leg was not answered, so concurrent calls cannot overbook a cap.
    With caps on conversions, converted calls count, plus calls still in progress (they may yet convert).
    The period counts are the handler's cap counter plus the deltas not folded into it yet (see
    ``tracking.models.caps``); a counter folded in another time zone, or for a later window than ``at``, is
    recounted from history (``handler_loads_recount``) until the next fold.
    """
    options = [o for o in options if all_in_progress or o.has_caps]
    if not options:
        return {}
    return loads_from_counter_rows(options=options, rows=_counter_reads(options=options, at=at), at=at)


def loads_from_counter_rows(*, options: list[dec.HandlerOption], rows: dict[int, CounterRow],
                            at: datetime) -> dict[int, dec.HandlerLoad]:
    """``handler_loads`` from the rows of its counter statement (read when wanted, or ahead as a new call is recorded:
    ``routing.store.voice.call_insert``)."""
    loads: dict[int, dec.HandlerLoad] = {}
    stale: list[dec.HandlerOption] = []
    for o in options:
        in_progress, fresh, hour, day, month, total, _pending = rows.get(o.id, (0, True, 0, 0, 0, 0, 0))
        if not o.has_period_caps:
            loads[o.id] = dec.HandlerLoad(in_progress=in_progress)
        elif not fresh:
            stale.append(o)
            loads[o.id] = dec.HandlerLoad(in_progress=in_progress)
        else:
            loads[o.id] = _load(o, in_progress, hour, day, month, total)
    if stale:
        for hid, (hour, day, month, total) in period_counts_recount(options=stale, at=at).items():
            o = next(s for s in stale if s.id == hid)
            loads[hid] = _load(o, loads[hid].in_progress, hour, day, month, total)
    return loads


def _load(o: dec.HandlerOption, in_progress: int, hour: int, day: int, month: int, total: int) -> dec.HandlerLoad:
    if o.cap_counts == CapTrigger.CONVERSION:  # calls in progress may still convert: count them so a burst cannot overbook
        hour, day, month, total = (n + in_progress for n in (hour, day, month, total))
    return dec.HandlerLoad(in_progress=in_progress, hour=hour, day=day, month=month, total=total)


def _counter_reads(*, options: list[dec.HandlerOption], at: datetime) -> dict[int, CounterRow]:
    """Per handler: slots held now, whether its counter is usable at ``at`` (same zone, no later window),
    and its counted calls this hour/day/month/ever (counter plus pending deltas). One statement."""
    if connection.vendor == "postgresql":
        return counter_reads_pg(options=options, at=at)
    return counter_reads_portable(options=options, at=at)


def counter_reads_pg(*, options: Sequence[dec.HandlerOption], at: datetime) -> dict[int, CounterRow]:
    """``_counter_reads`` on PostgreSQL: constant text, the handlers as arrays."""
    with fastdb.fixed_cursor() as cursor:
        cursor.execute(_COUNTER_READS_PG, _counter_params_pg(options, at))
        rows = _counter_rows(cursor.fetchall())
    return _fold_when_late(rows, at)


def counter_reads_portable(*, options: list[dec.HandlerOption], at: datetime) -> dict[int, CounterRow]:
    """``_counter_reads`` in SQL any database runs (SQLite's): the handlers as a VALUES list."""
    adapt = connection.ops.adapt_datetimefield_value
    params: list[Any] = []
    options = list({o.id: o for o in options}.values())  # once per handler: the pending deltas are summed per handler
    for o in options:
        starts = dec.period_starts(o.timezone, at)
        params += [o.id, o.cap_counts if o.has_period_caps else None, o.timezone, *(adapt(v) for v in (starts.hour, starts.day, starts.month))]
    values = ", ".join(["(%s, %s, %s, %s, %s, %s)"] * len(options))
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH w(handler_id, counts, zone, hour_start, day_start, month_start) AS (VALUES {values}), {_PENDING_PORTABLE} "
            f"{_COUNTER_READS_BODY}",
            [*params, adapt(at)],
        )
        rows = _counter_rows(cursor.fetchall())
    return _fold_when_late(rows, at)


def _counter_rows(found: list[tuple]) -> dict[int, CounterRow]:
    return {
        row[0]: (int(row[1]), bool(row[2]), int(row[3] or 0), int(row[4] or 0), int(row[5] or 0), int(row[6] or 0), int(row[7] or 0))
        for row in found
    }


def _fold_when_late(rows: dict[int, CounterRow], at: datetime) -> dict[int, CounterRow]:
    """Past ``FOLD_INLINE_PENDING`` pending deltas in ``rows`` (the fold is late), fold those handlers' deltas now.
    ``rows`` stay right: a fold moves deltas into counters without changing their sums. The fold skips when
    another fold holds its lock (that one is folding them)."""
    if sum(row[6] for row in rows.values()) > FOLD_INLINE_PENDING:
        cap_counters_fold(at=at, handler_ids=sorted(hid for hid, row in rows.items() if row[6]))
    return rows


# ``_counter_params_pg`` of a configuration's tuple of handlers (``CampaignConfig.capped``): id(tuple) -> (the tuple,
# the period starts of its time zones, the parameter). Built again when a period starts or the configuration changes.
_PARAMS: dict[int, tuple[Sequence[dec.HandlerOption], tuple[dec.PeriodStarts, ...], str]] = {}


def _counter_params_pg(options: Sequence[dec.HandlerOption], at: datetime) -> list[Any]:
    """The counter statement's parameters on PostgreSQL (``_COUNTER_W_PG``): the handlers' six arrays as one JSON
    array of array literals, and ``at``. For a tuple (a configuration's own, the same object call after call) the
    arrays are kept while its time zones' hour, day and month starts stay the same."""
    if not isinstance(options, tuple):
        return [_counter_arrays_pg(options, at), at]
    starts = tuple(dec.period_starts(zone, at) for zone in sorted({o.timezone for o in options}))
    kept = _PARAMS.get(id(options))
    if kept is not None and kept[0] is options and kept[1] == starts:
        return [kept[2], at]
    text = _counter_arrays_pg(options, at)
    if len(_PARAMS) >= 1024:
        _PARAMS.clear()
    _PARAMS[id(options)] = (options, starts, text)
    return [text, at]


def _counter_arrays_pg(options: Sequence[dec.HandlerOption], at: datetime) -> str:
    ids, counts, zones, hours, days, months = [], [], [], [], [], []
    for o in {o.id: o for o in options}.values():  # once per handler: the pending deltas are summed per handler
        starts = dec.period_starts(o.timezone, at)
        ids.append(o.id)
        counts.append(o.cap_counts if o.has_period_caps else None)
        zones.append(o.timezone)
        hours.append(starts.hour)
        days.append(starts.day)
        months.append(starts.month)
    return json.dumps([fastdb.pg_array(values) for values in (ids, counts, zones, hours, days, months)])


@dataclass(frozen=True)
class CountersRead:
    """Counters read ahead, as the new call is recorded (``routing.store.voice.call_insert``): the rows of these handlers
    at ``at``."""

    at: datetime
    rows: dict[int, CounterRow]

    def loads(self, options: list[dec.HandlerOption], *, all_in_progress: bool) -> dict[int, dec.HandlerLoad] | None:
        """``handler_loads(options=options, at=self.at, all_in_progress=...)`` from these rows, or None when they
        miss one of the handlers wanted."""
        wanted = [o for o in options if all_in_progress or o.has_caps]
        if any(o.id not in self.rows for o in wanted):
            return None
        return loads_from_counter_rows(options=wanted, rows=self.rows, at=self.at) if wanted else {}


# Per handler (w): slots held now (the (handler, holds_slot) index), and when it counts calls: its counter if
# folded in the same zone for the same windows (else 0, and "fresh" false when the counter is of another zone
# or of a later window), plus the deltas not folded yet (p: one grouped read of the handlers' pending deltas), and
# how many deltas are pending. Reads only the counter row, the pending deltas and the slots held: never the history.
_COUNTER_COLUMNS = (
    "w.handler_id, "
    f"(SELECT COUNT(*) FROM {CallAttempt._meta.db_table} a WHERE a.handler_id = w.handler_id AND a.holds_slot AND a.slot_expires_at > %s), "
    "CASE WHEN c.id IS NULL THEN 1 WHEN c.zone = w.zone AND c.hour_start <= w.hour_start AND c.day_start <= w.day_start "
    "AND c.month_start <= w.month_start THEN 1 ELSE 0 END, "
    "(CASE WHEN c.hour_start = w.hour_start THEN c.hour ELSE 0 END) + COALESCE(p.hour, 0), "
    "(CASE WHEN c.day_start = w.day_start THEN c.day ELSE 0 END) + COALESCE(p.day, 0), "
    "(CASE WHEN c.month_start = w.month_start THEN c.month ELSE 0 END) + COALESCE(p.month, 0), "
    "COALESCE(c.total, 0) + COALESCE(p.total, 0), "
    "COALESCE(p.pending, 0)"
)
_COUNTER_FROM = (
    f"FROM w LEFT JOIN {CapCounter._meta.db_table} c ON c.handler_id = w.handler_id AND c.counts = w.counts "
    "LEFT JOIN p ON p.handler_id = w.handler_id AND p.counts = w.counts"
)
# The pending deltas in SQL any database runs (SQLite's): one grouped read joined to the handlers.
_PENDING_PORTABLE = (
    "p AS (SELECT d.handler_id AS handler_id, d.counts AS counts, "
    "SUM(d.delta) FILTER (WHERE d.at >= w.hour_start) AS hour, SUM(d.delta) FILTER (WHERE d.at >= w.day_start) AS day, "
    "SUM(d.delta) FILTER (WHERE d.at >= w.month_start) AS month, SUM(d.delta) AS total, COUNT(*) AS pending "
    f"FROM w JOIN {CapDelta._meta.db_table} d ON d.handler_id = w.handler_id AND d.counts = w.counts GROUP BY d.handler_id, d.counts)"
)
_COUNTER_READS_BODY = f"SELECT {_COUNTER_COLUMNS} {_COUNTER_FROM}"
# On PostgreSQL the handlers go in as arrays (``unnest``), all six in one parameter (a JSON array of their literals):
# the statement's text is the same for every campaign (prepared once per connection), no list grows with the number
# of handlers, and it stays within the 50 parameters psycopg parses once per process rather than on every call (a
# test checks). The pending deltas come from ``tracking_capdelta_pending`` (tracking/sql/cap_counters_read.postgresql.sql):
# an index read whatever the delta table's statistics were when a connection prepared this statement.
_COUNTER_W_PG = (
    "a AS (SELECT %s::jsonb AS a), w AS MATERIALIZED (SELECT * FROM unnest((SELECT (a->>0)::bigint[] FROM a), "
    "(SELECT (a->>1)::text[] FROM a), (SELECT (a->>2)::text[] FROM a), (SELECT (a->>3)::timestamptz[] FROM a), "
    "(SELECT (a->>4)::timestamptz[] FROM a), (SELECT (a->>5)::timestamptz[] FROM a)) "
    "AS w(handler_id, counts, zone, hour_start, day_start, month_start)), "
    "p AS MATERIALIZED (SELECT * FROM tracking_capdelta_pending((SELECT (a->>0)::bigint[] FROM a), (SELECT (a->>1)::text[] FROM a), "
    "(SELECT (a->>3)::timestamptz[] FROM a), (SELECT (a->>4)::timestamptz[] FROM a), (SELECT (a->>5)::timestamptz[] FROM a)))"
)
# Each handler's counter row by its (handler_id, counts) index: a LATERAL read with LIMIT 1 (the pair is unique), so no
# plan can hash the whole counter table (one row per capped handler of the install) for a campaign's few handlers.
# The generic plan of the plain join did that: 0.36 against 0.24 ms per execution for one handler among 1,000.
_COUNTER_FROM_PG = (
    f"FROM w LEFT JOIN LATERAL (SELECT * FROM {CapCounter._meta.db_table} c0 WHERE c0.handler_id = w.handler_id AND c0.counts = w.counts "
    "LIMIT 1) c ON true LEFT JOIN p ON p.handler_id = w.handler_id AND p.counts = w.counts"
)
_COUNTER_READS_PG = f"WITH {_COUNTER_W_PG} SELECT {_COUNTER_COLUMNS} {_COUNTER_FROM_PG}"


def handler_loads_recount(*, options: Iterable[dec.HandlerOption], at: datetime, all_in_progress: bool = False) -> dict[int, dec.HandlerLoad]:
    """``handler_loads`` counted from the history itself (attempts and calls), not from the cap counters: the
    reference the counters are checked against, and what a counter of another time zone falls back to."""
    options = [o for o in options if all_in_progress or o.has_caps]
    if not options:
        return {}
    in_progress = {row[0]: int(row[1]) for row in _attempt_counts(options=options, conn=[], at=at)}
    periods = period_counts_recount(options=[o for o in options if o.has_period_caps], at=at)
    return {
        o.id: _load(o, in_progress.get(o.id, 0), *periods.get(o.id, (0, 0, 0, 0))) if o.has_period_caps
        else dec.HandlerLoad(in_progress=in_progress.get(o.id, 0))
        for o in options
    }


def period_counts_recount(*, options: list[dec.HandlerOption], at: datetime) -> dict[int, tuple[int, int, int, int]]:
    """Counted calls this hour/day/month/ever of each handler (what its ``cap_counts`` counts), from history."""
    counts: dict[int, tuple[int, int, int, int]] = {o.id: (0, 0, 0, 0) for o in options}
    # Every window and the total are wanted: the total only where a total cap is set, so flag one.
    conn = [dataclass_replace(o, total_cap=0) for o in options if o.cap_counts == CapTrigger.CONNECTION]
    if conn:
        for row in _attempt_counts(options=conn, conn=conn, at=at):
            counts[row[0]] = tuple(int(v or 0) for v in row[2:6])
    conv = [o for o in options if o.cap_counts == CapTrigger.CONVERSION]
    if conv:
        # Conversions as tracking counts them (Call.objects.handler_conversions): the handler's revenue side
        # converted, in the window of converted_at.
        converted = Q(revenue_converted=True)
        rows = (
            Call.objects.filter(handler_id__in=[o.id for o in conv], revenue_converted=True).order_by().values("handler_id").annotate(
                hour=Count("id", filter=converted & _window_q(conv, at, "hour", "converted_at")),
                day=Count("id", filter=converted & _window_q(conv, at, "day", "converted_at")),
                month=Count("id", filter=converted & _window_q(conv, at, "month", "converted_at")),
                total=Count("id"),
            )
        )
        for row in rows:
            counts[row["handler_id"]] = (row["hour"], row["day"], row["month"], row["total"])
    return counts


def _attempt_counts(*, options: list[dec.HandlerOption], conn: list[dec.HandlerOption], at: datetime) -> list[tuple]:
    """One aggregate over attempts: per handler, slots held now and counted attempts in its hour/day/month/ever.

    Hand-written SQL because it is the hot path's biggest query: the ORM spent more time building this
    filter (one window per time zone and period) than the database spent running it. ``COUNT(*) FILTER``
    runs on PostgreSQL and on SQLite >= 3.30.
    """
    if connection.vendor == "postgresql":
        return attempt_counts_pg(options=options, conn=conn, at=at)
    return attempt_counts_portable(options=options, conn=conn, at=at)


def attempt_counts_portable(*, options: list[dec.HandlerOption], conn: list[dec.HandlerOption], at: datetime) -> list[tuple]:
    """``_attempt_counts`` in SQL any database runs (SQLite's): IN lists and one window per time zone."""
    adapt = connection.ops.adapt_datetimefield_value
    now = adapt(at)

    def ids(group: Iterable[dec.HandlerOption]) -> tuple[str, list[Any]]:
        values = [o.id for o in group]
        return ", ".join(["%s"] * len(values)), values

    by_zone: dict[str, list[dec.HandlerOption]] = defaultdict(list)
    for o in conn:
        by_zone[o.timezone].append(o)

    def window(period: str) -> tuple[str, list[Any]]:
        parts, params = [], []
        for zone_name, group in by_zone.items():
            marks, values = ids(group)
            parts.append(f"(handler_id IN ({marks}) AND started_at >= %s)")
            params += [*values, adapt(getattr(dec.period_starts(zone_name, at), period))]
        return " OR ".join(parts), params

    select, select_params = ["COUNT(*) FILTER (WHERE holds_slot AND slot_expires_at > %s)"], [now]
    rows, rows_params = "(holds_slot AND slot_expires_at > %s)", [now]
    if conn:
        marks, conn_ids = ids(conn)
        counted = f"counted AND handler_id IN ({marks})"
        for period in ("hour", "day", "month"):
            text, params = window(period)
            select.append(f"COUNT(*) FILTER (WHERE {counted} AND ({text}))")
            select_params += [*conn_ids, *params]
        select.append(f"COUNT(*) FILTER (WHERE {counted})")
        select_params += conn_ids
        month, month_params = window("month")
        totals_marks, totals = ids(o for o in conn if o.total_cap is not None)
        rows += f" OR (counted AND ({month}" + (f" OR handler_id IN ({totals_marks})" if totals else "") + "))"
        rows_params += [*month_params, *totals]
    else:
        select += ["0"] * 4
    all_marks, all_ids = ids(options)
    sql = (
        f"SELECT handler_id, {', '.join(select)} FROM {CallAttempt._meta.db_table} "
        f"WHERE handler_id IN ({all_marks}) AND ({rows}) GROUP BY handler_id"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*select_params, *all_ids, *rows_params])
        return cursor.fetchall()


def attempt_counts_pg(*, options: list[dec.HandlerOption], conn: list[dec.HandlerOption], at: datetime) -> list[tuple]:
    """``_attempt_counts`` on PostgreSQL: the handlers and their windows go in as arrays (``unnest``), so the
    statement's text is the same for every campaign: psycopg converts it once per process, and no IN list
    grows with the number of handlers."""
    conn_ids = {o.id for o in conn}
    zones: dict[str, int] = {}
    ids, counts, totals, zone_of = [], [], [], []
    for o in options:
        ids.append(o.id)
        counts.append(o.id in conn_ids)
        totals.append(o.id in conn_ids and o.total_cap is not None)
        zone_of.append(zones.setdefault(o.timezone, len(zones) + 1))
    starts = [dec.period_starts(zone, at) for zone in zones]
    with fastdb.fixed_cursor() as cursor:
        cursor.execute(_ATTEMPT_COUNTS_PG, [
            at, ids, counts, totals, zone_of, [z.hour for z in starts], [z.day for z in starts], [z.month for z in starts], at,
        ])
        return cursor.fetchall()


# Handlers (w) with the index of their time zone's period starts (z: one row per time zone, not per handler).
_ATTEMPT_COUNTS_PG = (
    "SELECT a.handler_id, "
    "COUNT(*) FILTER (WHERE a.holds_slot AND a.slot_expires_at > %s), "
    "COUNT(*) FILTER (WHERE a.counted AND w.conn AND a.started_at >= z.hour_start), "
    "COUNT(*) FILTER (WHERE a.counted AND w.conn AND a.started_at >= z.day_start), "
    "COUNT(*) FILTER (WHERE a.counted AND w.conn AND a.started_at >= z.month_start), "
    "COUNT(*) FILTER (WHERE a.counted AND w.conn) "
    "FROM unnest(%s::bigint[], %s::boolean[], %s::boolean[], %s::int[]) AS w(handler_id, conn, total, zone) "
    "JOIN unnest(%s::timestamptz[], %s::timestamptz[], %s::timestamptz[]) WITH ORDINALITY AS z(hour_start, day_start, month_start, idx) "
    "ON z.idx = w.zone "
    f"JOIN {CallAttempt._meta.db_table} a ON a.handler_id = w.handler_id "
    "WHERE (a.holds_slot AND a.slot_expires_at > %s) OR (a.counted AND w.conn AND (a.started_at >= z.month_start OR w.total)) "
    "GROUP BY a.handler_id"
)


def cap_counters_fold(*, at: datetime | None = None, handler_ids: list[int] | None = None) -> int:
    """Fold the pending cap deltas into each handler's counters (``tracking.models.caps``), and rebuild from
    history the counters of handlers whose time zone changed. Safe to run at any time and twice at once (the
    second run waits for the first on PostgreSQL, SQLite writes one at a time); readers see the counters and
    deltas before or after, never half. Returns how many counters were written.

    ``handler_ids``: only these handlers, inside the caller's transaction (the voice path, when the fold is late:
    ``FOLD_INLINE_PENDING``); on PostgreSQL it gives way (returns 0) when another fold holds the lock, rather than
    waiting for it. On PostgreSQL the deltas summed are the rows the DELETE removed (``RETURNING``): exact under
    READ COMMITTED, whatever commits meanwhile; the advisory lock keeps two folds from writing one counter."""
    at = at or timezone.now()
    pg = connection.vendor == "postgresql"
    with transaction.atomic():
        if pg:
            with connection.cursor() as cursor:
                if handler_ids is None:
                    cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_FOLD_LOCK])
                else:
                    cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [_FOLD_LOCK])
                    if not cursor.fetchone()[0]:
                        return 0
        deltas = CapDelta.objects.order_by()
        counters = CapCounter.objects.all()
        if handler_ids is not None:
            deltas, counters = deltas.filter(handler_id__in=handler_ids), counters.filter(handler_id__in=handler_ids)
        pending = set(deltas.values_list("handler_id", "counts").distinct())
        moved = set(counters.exclude(zone=F("handler__timezone")).values_list("handler_id", "counts"))
        if not pending and not moved:
            return 0
        zones = dict(Handler.objects.filter(pk__in={h for h, _ in pending | moved}).values_list("pk", "timezone"))
        pending_ids = sorted({h for h, _ in pending})
        if pg:
            sums = _deltas_take_pg(pending_ids, zones, at)
            pending |= set(sums)  # a trigger of these handlers whose first delta came after the look-up above
        else:
            sums = _deltas_sums(zones, at)
            CapDelta.objects.filter(handler_id__in=pending_ids).delete()
        keys = pending | moved
        old = {(c.handler_id, c.counts): c for c in CapCounter.objects.filter(handler_id__in=list(zones))}
        rebuild = [
            dec.HandlerOption(id=hid, name="", number="", timezone=zones[hid], cap_counts=counts, total_cap=0)
            for hid, counts in keys if hid in zones and (c := old.get((hid, counts))) is not None and c.zone != zones[hid]
        ]
        recounted = {
            (hid, kind): n for kind in CapTrigger.values
            for hid, n in period_counts_recount(options=[o for o in rebuild if o.cap_counts == kind], at=at).items()
        }
        written = []
        for hid, counts in sorted(keys):
            if hid not in zones:
                continue  # the handler was deleted: its deltas go
            starts = dec.period_starts(zones[hid], at)
            c = old.get((hid, counts))
            if c is not None and c.zone != zones[hid]:
                hour, day, month, total = recounted[(hid, counts)]
            else:
                d = sums.get((hid, counts), {"hour": 0, "day": 0, "month": 0, "total": 0})
                hour = d["hour"] + (c.hour if c is not None and c.hour_start == starts.hour else 0)
                day = d["day"] + (c.day if c is not None and c.day_start == starts.day else 0)
                month = d["month"] + (c.month if c is not None and c.month_start == starts.month else 0)
                total = d["total"] + (c.total if c is not None else 0)
            written.append(CapCounter(
                handler_id=hid, counts=counts, zone=zones[hid], hour_start=starts.hour, day_start=starts.day,
                month_start=starts.month, hour=hour, day=day, month=month, total=total,
            ))
        CapCounter.objects.bulk_create(
            written, update_conflicts=True, unique_fields=["handler", "counts"],
            update_fields=["zone", "hour_start", "day_start", "month_start", "hour", "day", "month", "total"],
        )
    return len(written)


def _deltas_sums(zones: dict[int, str], at: datetime) -> dict[tuple[int, str], dict[str, int]]:
    """The pending deltas of these handlers summed over each one's hour/day/month at ``at`` and ever (one read per time zone)."""
    by_zone: dict[str, list[int]] = defaultdict(list)
    for hid, zone_name in zones.items():
        by_zone[zone_name].append(hid)
    sums: dict[tuple[int, str], dict[str, int]] = {}
    for zone_name, ids in by_zone.items():
        starts = dec.period_starts(zone_name, at)
        rows = CapDelta.objects.filter(handler_id__in=ids).order_by().values("handler_id", "counts").annotate(
            hour=Sum("delta", filter=Q(at__gte=starts.hour)), day=Sum("delta", filter=Q(at__gte=starts.day)),
            month=Sum("delta", filter=Q(at__gte=starts.month)), total=Sum("delta"),
        )
        for row in rows:
            sums[(row["handler_id"], row["counts"])] = {k: int(row[k] or 0) for k in ("hour", "day", "month", "total")}
    return sums


def _deltas_take_pg(ids: list[int], zones: dict[int, str], at: datetime) -> dict[tuple[int, str], dict[str, int]]:
    """DELETE the pending deltas of handlers ``ids`` and return their sums per handler and trigger over its windows
    (the deleted rows themselves: none counted twice, none lost). A deleted handler's deltas go, summed for none."""
    known = [hid for hid in ids if hid in zones]
    starts = [dec.period_starts(zones[hid], at) for hid in known]
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH gone AS (DELETE FROM {CapDelta._meta.db_table} WHERE handler_id = ANY(%s::bigint[]) RETURNING handler_id, counts, at, delta) "
            "SELECT g.handler_id, g.counts, SUM(g.delta) FILTER (WHERE g.at >= z.hour_start), SUM(g.delta) FILTER (WHERE g.at >= z.day_start), "
            "SUM(g.delta) FILTER (WHERE g.at >= z.month_start), SUM(g.delta) "
            "FROM gone g JOIN unnest(%s::bigint[], %s::timestamptz[], %s::timestamptz[], %s::timestamptz[]) "
            "AS z(handler_id, hour_start, day_start, month_start) ON z.handler_id = g.handler_id GROUP BY g.handler_id, g.counts",
            [ids, known, [z.hour for z in starts], [z.day for z in starts], [z.month for z in starts]],
        )
        return {
            (row[0], row[1]): {"hour": int(row[2] or 0), "day": int(row[3] or 0), "month": int(row[4] or 0), "total": int(row[5] or 0)}
            for row in cursor.fetchall()
        }


_FOLD_LOCK = 0x6361_7073  # pg_advisory_xact_lock key of cap_counters_fold ('caps')


def attempt_slots_release_stale(*, at: datetime | None = None) -> int:
    """Clear ``holds_slot`` on attempts whose slot expired (their callback was lost). Idempotent; counting
    already ignores expired slots, this only tidies the flag. Returns how many were released."""
    return CallAttempt.objects.filter(holds_slot=True, slot_expires_at__lte=at or timezone.now()).update(holds_slot=False)


_CAP_COLUMNS = ("id", *dec.CAP_FIELDS)


def handlers_lock(ids: list[int]) -> list[tuple]:
    """Lock the handlers' rows (in id order, so two calls never deadlock) and read their caps: per handler its id,
    its caps (``dec.CAP_FIELDS``) and the id of a leg to it, drawn from the legs' sequence (PostgreSQL: the leg is
    then inserted with the turn's other writes, ``routing.store.voice.turn_flush``; elsewhere None). On PostgreSQL
    one constant statement (prepared once per connection); elsewhere the ORM's."""
    if connection.vendor == "postgresql":
        with fastdb.fixed_cursor() as cursor:
            cursor.execute(_HANDLERS_LOCK_PG, [fastdb.pg_array(ids)])
            return cursor.fetchall()
    return [(*row, None) for row in Handler.objects.select_for_update().filter(pk__in=ids).order_by("pk").values_list(*_CAP_COLUMNS)]


_HANDLERS_LOCK_PG = (
    f"SELECT {', '.join(_CAP_COLUMNS)}, nextval(pg_get_serial_sequence('{CallAttempt._meta.db_table}', '{CallAttempt._meta.pk.column}')) "
    f"FROM {Handler._meta.db_table} WHERE id = ANY(%s::bigint[]) ORDER BY id FOR UPDATE"
)


