"""Live counters of handlers (one query) in each handler's own hour/day/month."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from routing import decision as dec
from routing.services import handler_loads
from tests.tracking.factories import CallAttemptFactory, CallFactory, HandlerFactory

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 6, 15, 16, 30, tzinfo=UTC)  # Monday 12:30 in New York, 09:30 in Los Angeles


def option(handler, **caps):
    return dec.HandlerOption(id=handler.id, name=handler.name, number="+13035550100", timezone=handler.timezone, **caps)


def attempt(handler, at, **kw):
    return CallAttemptFactory(handler=handler, started_at=at, **kw)


def test_counts_follow_each_handlers_time_zone(django_assert_num_queries):
    ny = HandlerFactory(timezone="America/New_York")
    la = HandlerFactory(timezone="America/Los_Angeles")
    for h in (ny, la):
        attempt(h, NOW - timedelta(minutes=20), counted=True)  # this hour everywhere
        attempt(h, NOW - timedelta(hours=10), counted=True)  # 02:30 today in New York; 23:30 yesterday in LA
        attempt(h, NOW - timedelta(days=20), counted=True)  # last month (May 26)
        attempt(h, NOW - timedelta(days=3), counted=False)  # not answered: never counted
        attempt(h, NOW - timedelta(minutes=1), counted=True, holds_slot=True, slot_expires_at=NOW + timedelta(seconds=30))
        attempt(h, NOW - timedelta(minutes=10), counted=False, holds_slot=True, slot_expires_at=NOW - timedelta(seconds=1))  # stale
    caps = {"concurrency_cap": 5, "hourly_cap": 10, "daily_cap": 10, "monthly_cap": 10, "total_cap": 10}
    with django_assert_num_queries(1):
        loads = handler_loads(options=[option(ny, **caps), option(la, **caps)], at=NOW)
    assert loads[ny.id] == dec.HandlerLoad(in_progress=1, hour=2, day=3, month=3, total=4)
    assert loads[la.id] == dec.HandlerLoad(in_progress=1, hour=2, day=2, month=3, total=4)


def test_handlers_without_caps_are_not_counted_unless_least_connected():
    h = HandlerFactory()
    attempt(h, NOW, holds_slot=True, slot_expires_at=NOW + timedelta(seconds=60))
    assert handler_loads(options=[option(h)], at=NOW) == {}
    assert handler_loads(options=[option(h)], at=NOW, all_in_progress=True)[h.id].in_progress == 1


def test_concurrency_only_caps_count_slots_but_no_periods():
    h = HandlerFactory()
    attempt(h, NOW - timedelta(minutes=1), counted=True)
    assert handler_loads(options=[option(h, concurrency_cap=2)], at=NOW)[h.id] == dec.HandlerLoad()


def test_conversion_caps_count_converted_calls_plus_calls_in_progress():
    h = HandlerFactory()
    for started in (NOW - timedelta(minutes=5), NOW - timedelta(days=2), NOW - timedelta(days=40)):
        CallFactory(handler=h, converted=True, revenue_converted=True, started_at=started, converted_at=started)
    CallFactory(handler=h, converted=True, revenue_converted=False, started_at=NOW, converted_at=NOW)  # payout side only
    attempt(h, NOW, holds_slot=True, slot_expires_at=NOW + timedelta(seconds=60))
    load = handler_loads(options=[option(h, daily_cap=5, total_cap=9, cap_counts="conversion")], at=NOW)[h.id]
    assert load == dec.HandlerLoad(in_progress=1, hour=2, day=2, month=3, total=4)


@pytest.mark.postgres
def test_counters_read_ahead_for_a_new_call_are_the_loads_read_alone(django_assert_num_queries):
    """The new call's id drawn ahead: recording it reads the counters (one statement) and writes nothing yet."""
    from routing.store.voice import call_insert
    from tracking.models import Call

    ny = HandlerFactory(timezone="America/New_York")
    la = HandlerFactory(timezone="America/Los_Angeles")
    free = HandlerFactory()
    for h in (ny, la):
        attempt(h, NOW - timedelta(minutes=20), counted=True)
        attempt(h, NOW - timedelta(hours=10), counted=True)
        attempt(h, NOW - timedelta(minutes=1), counted=True, holds_slot=True, slot_expires_at=NOW + timedelta(seconds=30))
    attempt(free, NOW, holds_slot=True, slot_expires_at=NOW + timedelta(seconds=60))
    caps = {"concurrency_cap": 5, "hourly_cap": 10, "daily_cap": 10, "monthly_cap": 10, "total_cap": 10}
    options = [option(ny, **caps), option(la, **caps), option(free)]
    call = Call(call_sid="CAahead", caller_number="+14155550100", called_number="+13035550100", started_at=NOW)
    with django_assert_num_queries(1):
        ahead = call_insert(call, counters_for=options, at=NOW, reserved_id=987654)
    assert ahead is not None and call.pk == 987654 and call._state.adding and not Call.objects.filter(pk=987654).exists()
    for every in (False, True):
        assert ahead.loads(options, all_in_progress=every) == handler_loads(options=options, at=NOW, all_in_progress=every)
    # A handler whose counters were not read ahead: the plan reads them itself.
    assert ahead.loads([*options, option(HandlerFactory(), concurrency_cap=1)], all_in_progress=False) is None


@pytest.mark.postgres
def test_the_hot_statements_stay_within_what_psycopg_parses_once():
    """psycopg parses a statement's placeholders on every execution when it has more than 50 parameters or 4096
    bytes (psycopg._queries.MAX_CACHED_STATEMENT_*); the hot path's statements stay within both."""
    from psycopg import _queries

    from calltrack import fastdb
    from routing.store.counters import _COUNTER_READS_PG, _HANDLERS_LOCK_PG
    from routing.store.voice import (
        _ATTEMPT,
        _CALL_BY_ID,
        _CALL_BY_SID,
        _STEP_ATTEMPTS,
        _TRACKING_NUMBER,
        _TRACKING_NUMBER_RESERVING,
    )
    from tracking.models import Call, CallAttempt, CallEvent

    insert_sql, _ = fastdb.insert_statement(Call(call_sid="CA1"))
    # The first turn's flush on PostgreSQL: the call whole, its legs and its timeline steps in one statement.
    call = Call(pk=1, call_sid="CA1", started_at=NOW)
    steps = [CallEvent(call=call, kind="call.started", message="x"), CallEvent(call=call, kind="call.routed", message="y")]
    flush = [fastdb.insert_rows_statement([call], with_pk=True), fastdb.insert_rows_statement([CallAttempt(pk=2, call=call, started_at=NOW)], with_pk=True),
             fastdb.insert_rows_statement(steps)]
    flush_sql, _ = fastdb.together_statement(flush)
    for sql in (_COUNTER_READS_PG, _HANDLERS_LOCK_PG, insert_sql, flush_sql, *(loader.sql() for loader in (
            _TRACKING_NUMBER, _TRACKING_NUMBER_RESERVING, _CALL_BY_ID, _CALL_BY_SID, _ATTEMPT, _STEP_ATTEMPTS))):
        assert sql.count("%s") <= _queries.MAX_CACHED_STATEMENT_PARAMS, sql[:80]
        assert len(sql.encode()) <= _queries.MAX_CACHED_STATEMENT_LENGTH, sql[:80]
