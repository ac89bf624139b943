"""Cap counters: the counts a cap check reads cost the same whatever the history, and always equal a recount
of the history (late callbacks, conversions, deletions and time zone changes included), on both databases."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection

from routing import decision as dec
from routing.services import Links, Turn, attempt_status_record, handler_loads
from routing.store.counters import _COUNTER_READS_PG, _counter_params_pg, cap_counters_fold, handler_loads_recount
from tests.tracking.factories import CallAttemptFactory, CallFactory, HandlerFactory
from tracking.models import CallAttempt, CapCounter, CapDelta, Handler

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 6, 15, 16, 30, tzinfo=UTC)
CAPS = {"concurrency_cap": 50, "hourly_cap": 100, "daily_cap": 100, "monthly_cap": 100, "total_cap": 100}


def option(handler, **kw):
    return dec.HandlerOption(id=handler.id, name=handler.name, number="+13035550100", timezone=handler.timezone, **{**CAPS, **kw})


def history(handlers, rng, n=60):
    """Attempts over 90 days (counted or not, some holding slots) and calls converted at random times."""
    for _ in range(n):
        h = rng.choice(handlers)
        at = NOW - timedelta(minutes=rng.randrange(0, 90 * 24 * 60))
        CallAttemptFactory(handler=h, started_at=at, counted=rng.random() < 0.7,
                           holds_slot=rng.random() < 0.1, slot_expires_at=NOW + timedelta(seconds=rng.choice([-5, 30])))
        if rng.random() < 0.3:
            CallFactory(handler=h, converted=True, revenue_converted=True, started_at=at, converted_at=at + timedelta(minutes=rng.randrange(0, 90)))


def assert_counts_match_history(options):
    assert handler_loads(options=options, at=NOW) == handler_loads_recount(options=options, at=NOW)


def test_counts_equal_a_recount_of_history_before_and_after_each_fold():
    rng = random.Random(7)
    handlers = [HandlerFactory(timezone=z) for z in ("America/New_York", "America/Los_Angeles", "Asia/Kolkata", "UTC")]
    options = [option(h, cap_counts="connection" if i % 2 == 0 else "conversion") for i, h in enumerate(handlers)]
    history(handlers, rng)
    assert_counts_match_history(options)  # nothing folded yet: everything is in deltas
    assert cap_counters_fold(at=NOW) >= len(handlers)
    assert not CapDelta.objects.exists()
    assert_counts_match_history(options)  # everything folded
    # Late changes: legs uncounted by their callbacks, conversions withdrawn or moved, rows deleted.
    attempts = list(CallAttempt.objects.filter(counted=True).order_by("?")[:10])
    for a in attempts[:5]:
        CallAttempt.objects.filter(pk=a.pk).update(counted=False)
    attempts[5].delete()
    CallAttempt.objects.filter(pk=attempts[6].pk).update(started_at=NOW - timedelta(minutes=3))
    CallAttempt.objects.filter(pk=attempts[7].pk).update(handler=handlers[0] if attempts[7].handler_id != handlers[0].pk else handlers[1])
    from tracking.models import Call

    converted = list(Call.objects.filter(revenue_converted=True).order_by("?")[:4])
    Call.objects.filter(pk=converted[0].pk).update(revenue_converted=False)
    Call.objects.filter(pk=converted[1].pk).update(converted_at=NOW - timedelta(minutes=1))
    converted[2].delete()
    history(handlers, rng, n=15)
    assert CapDelta.objects.exists()
    assert_counts_match_history(options)  # counters plus pending deltas
    cap_counters_fold(at=NOW)
    assert_counts_match_history(options)


def test_a_late_status_callback_uncounts_the_leg(settings):
    h = HandlerFactory()
    attempt = CallAttemptFactory(handler=h, counted=True, holds_slot=True, slot_expires_at=datetime.now(UTC) + timedelta(minutes=1))
    now = datetime.now(UTC)
    assert handler_loads(options=[option(h)], at=now)[h.id].hour == 1
    cap_counters_fold(at=now)
    attempt_status_record(Turn(links=Links("https://calls.example.com")), attempt_id=attempt.pk, status="no-answer")
    load = handler_loads(options=[option(h)], at=now)[h.id]
    assert (load.in_progress, load.hour, load.day, load.month, load.total) == (0, 0, 0, 0, 0)


def test_a_handler_moved_to_another_time_zone_is_recounted_then_rebuilt(django_assert_num_queries):
    h = HandlerFactory(timezone="America/New_York")
    CallAttemptFactory(handler=h, started_at=NOW - timedelta(hours=10), counted=True)  # 02:30 in New York, yesterday in LA
    cap_counters_fold(at=NOW)
    assert handler_loads(options=[option(h)], at=NOW)[h.id].day == 1
    Handler.objects.filter(pk=h.pk).update(timezone="America/Los_Angeles")
    h.refresh_from_db()
    with django_assert_num_queries(2):  # the counter is of another zone: one read, one recount
        assert handler_loads(options=[option(h)], at=NOW)[h.id].day == 0
    cap_counters_fold(at=NOW)
    assert CapCounter.objects.get(handler=h, counts="connection").zone == "America/Los_Angeles"
    with django_assert_num_queries(1):
        assert handler_loads(options=[option(h)], at=NOW)[h.id] == dec.HandlerLoad(month=1, total=1)


def test_a_counter_folded_later_than_the_check_is_recounted():
    h = HandlerFactory()
    CallAttemptFactory(handler=h, started_at=NOW - timedelta(minutes=5), counted=True)
    cap_counters_fold(at=NOW + timedelta(hours=2))  # another server's clock ahead, or a back-dated check
    assert handler_loads(options=[option(h)], at=NOW)[h.id].hour == 1


def test_deleting_a_handler_with_pending_deltas_works_and_the_fold_drops_them():
    h = HandlerFactory()
    CallAttemptFactory(handler=h, counted=True)
    cap_counters_fold()
    CallAttemptFactory(handler=h, counted=True)
    h.delete()
    cap_counters_fold()
    assert not CapDelta.objects.exists()
    assert not CapCounter.objects.exists()


def test_folding_with_nothing_pending_writes_nothing():
    assert cap_counters_fold() == 0


def test_the_fold_is_scheduled():
    from calltrack.schedules import SCHEDULES

    assert any(path == "routing.tasks.cap_counters_fold_task" for _, path, _, _ in SCHEDULES)


@pytest.mark.postgres
def test_the_cap_read_never_scans_history():
    """With 3,000 counted attempts on the handler, folded, the plan reads the counter row, the pending
    deltas and the slots held: no attempt of the history."""
    h = HandlerFactory()
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {CallAttempt._meta.db_table} (call_id, sequence, kind, handler_id, number_dialed, status, started_at, "
            "duration, holds_slot, counted) SELECT %s, 0, 'handler', %s, '+13035550100', 'completed', "
            "%s - (g * interval '43 seconds'), 30, false, true FROM generate_series(1, 3000) g",
            [CallFactory().pk, h.pk, NOW],
        )
        cursor.execute(f"ANALYZE {CallAttempt._meta.db_table}")
    cap_counters_fold(at=NOW)
    CallAttemptFactory(handler=h, started_at=NOW, counted=True, holds_slot=True, slot_expires_at=NOW + timedelta(seconds=30))
    o = option(h)
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + _COUNTER_READS_PG, _counter_params_pg([o], NOW))
        raw = cursor.fetchone()[0]
    plan = raw if isinstance(raw, list) else json.loads(raw)

    def nodes(node):
        yield node
        for child in node.get("Plans", []):
            yield from nodes(child)

    touched = [n for n in nodes(plan[0]["Plan"]) if n.get("Relation Name") == CallAttempt._meta.db_table]
    assert touched, "the slots held are read from the attempts"
    for n in touched:
        assert n["Node Type"] != "Seq Scan"
        assert n["Actual Rows"] * n["Actual Loops"] + n.get("Rows Removed by Filter", 0) + n.get("Rows Removed by Index Recheck", 0) <= 2
    assert handler_loads(options=[o], at=NOW) == handler_loads_recount(options=[o], at=NOW)
    assert handler_loads(options=[o], at=NOW)[h.id].total == 3001
