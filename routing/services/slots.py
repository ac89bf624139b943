"""Handler slots: live counters (one aggregate query), caps re-checked under row locks, stale slots tidied."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import replace as dataclass_replace
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import Count, Q
from django.utils import timezone

from calltrack import fastdb
from routing import decision as dec
from routing.services.common import FINAL_STATUSES_SQL, MAX_CALL_SECONDS
from routing.services.config import _webhook_events
from tracking.models import (
    AttemptStatus,
    Call,
    CallAttempt,
    CallStatus,
    CapTrigger,
    Handler,
)
from tracking.services.call_events import call_lifecycle_notify


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
    """Live counters for the given handlers: one query over attempts, plus one over calls when a handler's
    caps count conversions. Handlers without caps are left out unless ``all_in_progress`` (least connected).

    Calls in progress are attempts holding a slot whose expiry has not passed (a lost callback cannot hold a
    slot forever). Connections counted toward the period caps are attempts marked ``counted``: set when the
    slot is taken and cleared when the leg was not answered, so concurrent calls cannot overbook a cap.
    With caps on conversions, converted calls count, plus calls still in progress (they may yet convert).
    """
    options = [o for o in options if all_in_progress or o.has_caps]
    if not options:
        return {}
    conn = [o for o in options if o.has_period_caps and o.cap_counts == CapTrigger.CONNECTION]
    counters: dict[int, dict[str, int]] = {o.id: {"in_progress": 0, "hour": 0, "day": 0, "month": 0, "total": 0} for o in options}
    for row in _attempt_counts(options=options, conn=conn, at=at):
        counters[row[0]].update(zip(("in_progress", "hour", "day", "month", "total"), (int(v or 0) for v in row[1:]), strict=True))
    conv = [o for o in options if o.has_period_caps and o.cap_counts == CapTrigger.CONVERSION]
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
            counters[row["handler_id"]].update({k: v for k, v in row.items() if k != "handler_id"})
        for o in conv:  # calls in progress may still convert: count them so a burst cannot overbook
            c = counters[o.id]
            for period in ("hour", "day", "month", "total"):
                c[period] += c["in_progress"]
    return {hid: dec.HandlerLoad(**c) for hid, c in counters.items()}


def _attempt_counts(*, options: list[dec.HandlerOption], conn: list[dec.HandlerOption], at: datetime) -> list[tuple]:
    """One aggregate over attempts: per handler, slots held now and counted attempts in its hour/day/month/ever.

    Hand-written SQL because it is the hot path's biggest query: the ORM spent more time building this
    filter (one window per time zone and period) than the database spent running it. ``COUNT(*) FILTER``
    runs on PostgreSQL and on SQLite >= 3.30.
    """
    if connection.vendor == "postgresql":
        return _attempt_counts_pg(options=options, conn=conn, at=at)
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


def _attempt_counts_pg(*, options: list[dec.HandlerOption], conn: list[dec.HandlerOption], at: datetime) -> list[tuple]:
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


def attempt_slots_release_stale(*, at: datetime | None = None) -> int:
    """Clear ``holds_slot`` on attempts whose slot expired (their callback was lost). Idempotent; counting
    already ignores expired slots, this only tidies the flag. Returns how many were released."""
    return CallAttempt.objects.filter(holds_slot=True, slot_expires_at__lte=at or timezone.now()).update(holds_slot=False)


_CAP_COLUMNS = ("id", "concurrency_cap", "hourly_cap", "daily_cap", "monthly_cap", "total_cap", "cap_counts")


def _handlers_lock(ids: list[int]) -> list[tuple]:
    """Lock the handlers' rows (in id order, so two calls never deadlock) and read their caps. On PostgreSQL
    one constant statement (prepared once per connection); elsewhere the ORM's."""
    if connection.vendor == "postgresql":
        with fastdb.fixed_cursor() as cursor:
            cursor.execute(
                f"SELECT {', '.join(_CAP_COLUMNS)} FROM {Handler._meta.db_table} WHERE id = ANY(%s) ORDER BY id FOR UPDATE", [ids])
            return cursor.fetchall()
    return list(Handler.objects.select_for_update().filter(pk__in=ids).order_by("pk").values_list(*_CAP_COLUMNS))


def _take_step(call: Call, step: list[dec.HandlerOption], at: datetime) -> tuple[list[dec.HandlerOption], list[dec.Skip]]:
    """Which handlers of ``step`` still have room, checked under their row locks.

    Must run inside ``transaction.atomic()``: the capped handlers' rows are locked (``SELECT ... FOR UPDATE``,
    in id order so two calls never deadlock) and their counters re-read; the caller inserts the attempts
    in the same transaction, so the next call waiting on the lock sees them.
    """
    capped = [o for o in step if o.has_caps]
    if not capped:
        return step, []
    # The caps themselves are re-read from the locked rows: the plan may come from a cached configuration.
    caps = {row[0]: row[1:] for row in _handlers_lock([o.id for o in capped])}
    fresh = {
        o.id: dataclass_replace(o, concurrency_cap=c[0], hourly_cap=c[1], daily_cap=c[2], monthly_cap=c[3], total_cap=c[4], cap_counts=c[5])
        for o in capped if (c := caps.get(o.id)) is not None
    }
    loads = handler_loads(options=[o for o in fresh.values() if o.has_caps], at=at)
    free, skips = [], []
    for o in step:
        if o.has_caps and o.id not in fresh:
            skips.append(dec.Skip(o.id, o.name, dec.DISABLED, "handler no longer exists"))
            continue
        o = fresh.get(o.id, o)
        why = dec.cap_reached(o, loads.get(o.id, dec.HandlerLoad())) if o.has_caps else ""
        if why:
            skips.append(dec.Skip(o.id, o.name, dec.CAPPED, why + " (checked under lock)"))
        else:
            free.append(o)
    return free, skips


def _mark_answered(call: Call, attempt: CallAttempt, at: datetime, *, leg: bool = True) -> bool:
    """First answer of a leg: the attempt is answered (its slot now lasts as long as a call can), the call is
    in progress with that handler; ``call.answered`` is announced once (conditional UPDATEs decide, constant
    statements: this is on every answered call's path). ``leg=False`` leaves the attempt to the caller (the
    dial result completes it at once). Returns whether this answer was the call's first."""
    with fastdb.fixed_cursor() as cursor:
        if leg:
            cursor.execute(
                f"UPDATE {CallAttempt._meta.db_table} SET status = %s, slot_expires_at = %s WHERE id = %s AND status = %s",
                [AttemptStatus.ANSWERED, at + timedelta(seconds=MAX_CALL_SECONDS + settings.CALLTRACK_SLOT_MARGIN_SECONDS),
                 attempt.pk, AttemptStatus.DIALING],
            )
        cursor.execute(
            # A fallback number that is nobody's line keeps the call's handler (COALESCE), as the dial result does.
            f"UPDATE {Call._meta.db_table} SET answered_at = %s, handler_id = COALESCE(%s, handler_id), status = %s "
            f"WHERE id = %s AND answered_at IS NULL AND status NOT IN ({FINAL_STATUSES_SQL})",
            [at, attempt.handler_id, CallStatus.IN_PROGRESS, call.pk],
        )
        won = cursor.rowcount > 0
    if won:
        call.answered_at, call.handler_id, call.status = at, attempt.handler_id or call.handler_id, CallStatus.IN_PROGRESS
        call_lifecycle_notify(call=call, event="call.answered", webhook_events=_webhook_events(call), message=f"answered by {attempt.handler or attempt.number_dialed}",
                              data={"attempt": attempt.pk, "handler": attempt.handler_id})
    return won
