"""The cap counters' read cannot turn into a scan of the delta table (issue 26), and a late fold stays bounded.

``tracking_capdelta`` is a queue: the fold empties it and autovacuum analyses it empty. The counter statement is
prepared once per connection (``fastdb.fixed_cursor``) and keeps its generic plan; made on "empty" statistics, a
plan that read the pending deltas by scanning the table would stay with the connection while thousands of deltas
pile up. Here the statistics say empty, the statement is prepared and run as the voice path runs it with the
generic plan forced, 10,000 deltas arrive, and the plans PostgreSQL runs (nested ones included: auto_explain,
sent to this client) must read the deltas by index, within a budget of buffers."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection

from routing import decision as dec
from routing.store import counters
from tests.pg_plans import generic_plans, plans_of, shared_buffers, sql
from tests.tracking.factories import CallAttemptFactory, HandlerFactory
from tracking.models import CapCounter, CapDelta

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]
NOW = datetime(2026, 6, 15, 16, 30, tzinfo=UTC)
CAPS = {"concurrency_cap": 5, "hourly_cap": 100, "daily_cap": 100, "monthly_cap": 100}
OTHERS = 9_970  # deltas of handlers the read is not about
MINE = 10  # deltas of each handler read


def option(handler):
    return dec.HandlerOption(id=handler.id, name=handler.name, number="+13035550100", timezone=handler.timezone, **CAPS)


def test_the_counter_read_stays_an_index_read_whatever_the_statistics_said(django_assert_num_queries):
    handlers = [HandlerFactory(timezone=zone) for zone in ("America/New_York", "America/Chicago", "America/Los_Angeles")]
    options = [option(h) for h in handlers]
    for h in handlers:
        CallAttemptFactory(handler=h, started_at=NOW, holds_slot=True, slot_expires_at=NOW + timedelta(seconds=40), counted=False)
    CapDelta.objects.all().delete()
    sql("ANALYZE tracking_capdelta")  # what autovacuum leaves after a fold: statistics that say "empty"
    with generic_plans():  # the plan kept for the connection's life
        before = counters.counter_reads_pg(options=options, at=NOW)  # prepared and planned now, on those statistics
        assert {hid: row[2:] for hid, row in before.items()} == {h.id: (0, 0, 0, 0, 0) for h in handlers}
        sql(
            "INSERT INTO tracking_capdelta (handler_id, counts, at, delta) SELECT 1000000000 + g %% 50, 'connection', "
            "%s - g * interval '1 second', 1 FROM generate_series(1, %s) g", [NOW, OTHERS])
        sql(
            "INSERT INTO tracking_capdelta (handler_id, counts, at, delta) SELECT h, 'connection', %s - g * interval '1 second', 1 "
            "FROM unnest(%s::bigint[]) h, generate_series(1, %s) g", [NOW, [h.id for h in handlers], MINE])
        assert CapDelta.objects.count() == OTHERS + MINE * len(handlers) == 10_000
        found: dict = {}

        def read() -> None:
            with django_assert_num_queries(1):  # one statement, whatever the deltas
                found.update(counters.counter_reads_pg(options=options, at=NOW))

        plans = plans_of(read)
    # Right: each handler's slot held and its ten deltas this hour/day/month/ever, pending.
    assert found == {h.id: (1, True, MINE, MINE, MINE, MINE, MINE) for h in handlers}
    deltas = [p for p in plans if "tracking_capdelta" in p.split("plan:", 1)[1]]
    assert deltas and all("Seq Scan on tracking_capdelta" not in p for p in plans), plans
    assert any("capdelta_handler_counts_at on tracking_capdelta" in p for p in deltas), deltas
    # The budget: the grouped read touches a few index pages per handler, not the 10,000 rows' pages (a scan: 60+).
    inner = [p for p in deltas if "tracking_capdelta_pending" not in p.split("plan:", 1)[1]]
    assert inner and max(shared_buffers(p) for p in inner) <= 5 * len(handlers), inner


def test_the_counter_rows_are_read_by_index_not_by_scanning_every_handlers(django_assert_num_queries):
    """A campaign's few handlers among an install's 1,000 capped ones: their counter rows are read one by one on the
    (handler_id, counts) index, whatever the generic plan; the plain join's plan hashed the whole counter table."""
    handlers = [HandlerFactory(timezone=zone) for zone in ("America/New_York", "America/Chicago")]
    options = [option(h) for h in handlers]
    others = HandlerFactory.create_batch(1000)
    starts = dec.period_starts("America/New_York", NOW)
    CapCounter.objects.bulk_create([
        CapCounter(handler_id=h.id, counts="connection", zone="America/New_York", hour_start=starts.hour, day_start=starts.day,
                   month_start=starts.month, hour=i % 7, day=3, month=4, total=5) for i, h in enumerate([*others, handlers[0]])])
    sql("ANALYZE tracking_capcounter")
    assert counters.counter_reads_pg(options=options, at=NOW)[handlers[0].id][2:6] == (1000 % 7, 3, 4, 5)
    # The statement's generic plan (the one a connection keeps), as PostgreSQL runs it.
    statement = counters._COUNTER_READS_PG
    for n in (1, 2):
        statement = statement.replace("%s", f"${n}", 1)
    assert "%s" not in statement
    with generic_plans(), connection.cursor() as cursor:
        cursor.execute(f"PREPARE counter_read (text, timestamptz) AS {statement}")
        cursor.execute("EXPLAIN EXECUTE counter_read (%s, %s)", counters._counter_params_pg(options, NOW))
        plan = "\n".join(row[0] for row in cursor.fetchall())
        cursor.execute("DEALLOCATE counter_read")
    assert "Seq Scan on tracking_capcounter" not in plan, plan
    assert re.search(r"Index Scan using \w+ on tracking_capcounter", plan), plan


def test_a_late_fold_is_done_by_the_read_past_the_threshold(monkeypatch):
    """Past ``FOLD_INLINE_PENDING`` pending deltas, the read folds its handlers' deltas: the counts stay the same,
    the deltas are gone (the next read does not read them again), other handlers' deltas stay for the task."""
    handlers = [HandlerFactory(timezone=zone) for zone in ("America/New_York", "America/Denver")]
    options = [option(h) for h in handlers]
    other = HandlerFactory()
    CapDelta.objects.all().delete()
    CapDelta.objects.bulk_create(
        [CapDelta(handler_id=h.id, counts="connection", at=NOW - timedelta(minutes=i), delta=1) for h in handlers for i in range(30)]
        + [CapDelta(handler_id=other.id, counts="connection", at=NOW, delta=1)])
    monkeypatch.setattr(counters, "FOLD_INLINE_PENDING", 100)
    below = counters.counter_reads_pg(options=options, at=NOW)
    assert CapDelta.objects.count() == 61 and not CapCounter.objects.exists()
    monkeypatch.setattr(counters, "FOLD_INLINE_PENDING", 50)
    late = counters.counter_reads_pg(options=options, at=NOW)
    assert late == below and {hid: row[2:6] for hid, row in late.items()} == {h.id: (30, 30, 30, 30) for h in handlers}
    assert list(CapDelta.objects.values_list("handler_id", flat=True)) == [other.id]
    assert sorted(CapCounter.objects.values_list("handler_id", "hour", "day", "month", "total")) == [(h.id, 30, 30, 30, 30) for h in handlers]
    after = counters.counter_reads_pg(options=options, at=NOW)
    assert {hid: row[:6] for hid, row in after.items()} == {hid: row[:6] for hid, row in late.items()}
    assert all(row[6] == 0 for row in after.values())
    assert counters.counter_reads_portable(options=options, at=NOW) == after
