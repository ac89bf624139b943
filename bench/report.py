"""Benchmark: the operator's console at 1,000,000 calls over 90 days (PostgreSQL).

    .venv/bin/python bench/report.py [--calls 1000000] [--database ct_dash_bench] [--reload]

Creates the database if needed, migrates it, and (first run, or with --reload) loads the calls with one
INSERT ... SELECT over generate_series (not timed). Then times, through the real admin views and the
reporting selector: the dashboard for the last 30 days (targets: under 1 s), the call log's first page, a
filtered page (source + date range) and a search by number (each under 300 ms), the API's report endpoints,
and the call log's CSV export (rows/s and peak memory) when the export exists.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import time
import tracemalloc
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

UTM_SOURCES = ["google", "facebook", "bing", "radio", "partner", ""]
UTM_MEDIUMS = ["cpc", "social", "display", "offline", ""]
UTM_CAMPAIGNS = ["brand", "generic", "spring", "retargeting", "summer", ""]
STATES = ["CA", "NY", "TX", "FL", "IL", "CO", "WA", "GA", "NC", "AZ", ""]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1_000_000)
    parser.add_argument("--database", default="ct_dash_bench")
    parser.add_argument("--host", default="postgres@127.0.0.1:5432")
    parser.add_argument("--reload", action="store_true", help="Delete and load the calls again.")
    parser.add_argument("--repeat", type=int, default=5, help="Timed runs of each measure (median shown).")
    args = parser.parse_args()

    import psycopg

    with psycopg.connect(f"postgresql://{args.host}/postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [args.database]).fetchone():
            conn.execute(f'CREATE DATABASE "{args.database}"')
    os.environ["DATABASE_URL"] = f"postgres://{args.host}/{args.database}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "calltrack.settings")
    import django

    django.setup()
    from django.core.management import call_command
    from django.test.utils import setup_test_environment

    setup_test_environment()  # the test client's host is allowed; nothing else changes
    call_command("migrate", verbosity=0)
    call_command("createcachetable", verbosity=0)

    from tracking.models import Call

    have = Call.objects.count()
    if args.reload or have < args.calls:
        t0 = time.perf_counter()
        load(args.calls)
        print(f"loaded {args.calls:,} calls in {time.perf_counter() - t0:.1f} s")
    else:
        print(f"using the {have:,} calls already loaded (--reload to load again)")
    from tracking.models import CallDayRollup
    from tracking.services.reports import report_rollups_refresh

    if args.reload or have < args.calls or not CallDayRollup.objects.exists():
        t0 = time.perf_counter()
        days = report_rollups_refresh(all_days=True)
        print(f"rolled up {days} days in {time.perf_counter() - t0:.1f} s (once; then only changed days, every 5 minutes)")
    measure(args.repeat)


def load(count: int) -> None:
    """Parties and numbers through the ORM; the calls with one INSERT ... SELECT over generate_series."""
    from django.db import connection

    from calltrack.numbers.models import NumberKind, NumberPool, NumberSession, ReceivingNumber, TrackingNumber
    from tracking.models import Call, Campaign, Handler, Source

    Call.objects.all()._raw_delete(Call.objects.db)  # cascades are not needed: the bench loads no children
    NumberSession.objects.all().delete()
    TrackingNumber.objects.all().delete()
    NumberPool.objects.all().delete()
    Handler.objects.all().delete()
    Campaign.objects.all().delete()
    Source.objects.all().delete()
    ReceivingNumber.objects.all().delete()

    sources = [Source.objects.create(name=f"Source {i:02d}", source_id=f"bench-{i}") for i in range(20)]
    campaigns = [Campaign.objects.create(name=f"Campaign {i:02d}", campaign_id=f"bench-{i}") for i in range(10)]
    handlers = []
    for i in range(30):
        line = ReceivingNumber.objects.create(number=f"+1303555{1000 + i:04d}", label=f"Line {i}")
        handlers.append(Handler.objects.create(name=f"Handler {i:02d}", receiving_number=line, daily_cap=50 if i % 5 == 0 else None))
    pools = [NumberPool.objects.create(name=f"Pool {i}", campaign=campaigns[i], source=sources[i]) for i in range(3)]
    numbers = []
    for i in range(300):
        pool = pools[i % 3] if i < 90 else None
        numbers.append(TrackingNumber.objects.create(
            number=f"+1415555{2000 + i:04d}", kind=NumberKind.POOL if pool else NumberKind.STATIC, pool=pool,
            campaign=campaigns[i % 10], source=pool.source if pool else sources[i % 20], label=f"Number {i}",
        ))

    def arr(values) -> str:
        return "ARRAY[" + ",".join(str(v) for v in values) + "]::bigint[]"

    def text_arr(values) -> str:
        return "ARRAY[" + ",".join(f"'{v}'" for v in values) + "]::text[]"

    tn_ids, tn_sources, tn_campaigns = arr(n.pk for n in numbers), arr(n.source_id for n in numbers), arr(n.campaign_id for n in numbers)
    tn_e164 = text_arr(str(n.number) for n in numbers)
    handler_ids = arr(h.pk for h in handlers)
    capped = handlers[0].pk
    columns = {
        "call_sid": "'CABENCH' || lpad(g::text, 26, '0')",
        "tracking_number_id": f"({tn_ids})[1 + (r1 * {len(numbers)})::int % {len(numbers)}]",
        "source_id": f"({tn_sources})[1 + (r1 * {len(numbers)})::int % {len(numbers)}]",
        "campaign_id": f"({tn_campaigns})[1 + (r1 * {len(numbers)})::int % {len(numbers)}]",
        "handler_id": f"CASE WHEN r2 > 0.96 THEN NULL ELSE ({handler_ids})[1 + (r3 * {len(handlers)})::int % {len(handlers)}] END",
        "caller_number": "'+1' || (ARRAY['415','303','312','212','512','617'])[1 + g % 6] || lpad((g % 9999999)::text, 7, '0')",
        "called_number": f"({tn_e164})[1 + (r1 * {len(numbers)})::int % {len(numbers)}]",
        "caller_city": "''",
        "caller_state": f"({text_arr(STATES)})[1 + (r4 * {len(STATES)})::int % {len(STATES)}]",
        "caller_zip": "''",
        "caller_country": "'US'",
        "status": "CASE WHEN r2 < 0.68 THEN 'completed' WHEN r2 < 0.80 THEN 'no_answer' WHEN r2 < 0.90 THEN 'busy'"
                  " WHEN r2 < 0.96 THEN 'canceled' ELSE 'rejected' END",
        "reject_reason": "''",
        "started_at": "now() - (r5 * interval '90 days')",
        "answered_at": "CASE WHEN r2 < 0.68 THEN now() - (r5 * interval '90 days') + interval '8 seconds' END",
        "ended_at": "now() - (r5 * interval '90 days') + interval '3 minutes'",
        "duration": "(r3 * 600)::int",
        "talk_time": "CASE WHEN r2 < 0.68 THEN (r3 * 600)::int ELSE 0 END",
        "last_sequence": "-1",
        "tags": "'{}'::jsonb",
        "marketing_data": f"jsonb_build_object('utm_source', ({text_arr(UTM_SOURCES)})[1 + (r6 * 6)::int % 6],"
                          f" 'utm_medium', ({text_arr(UTM_MEDIUMS)})[1 + (r4 * 5)::int % 5],"
                          f" 'utm_campaign', ({text_arr(UTM_CAMPAIGNS)})[1 + (r3 * 6)::int % 6])",
        "landing_page": "''", "referrer": "''", "visitor_id": "''",
        "decision": f"CASE WHEN r6 < 0.01 THEN '{{\"skipped\": [{{\"handler_id\": {capped}, \"reason\": \"capped\"}}]}}'::jsonb ELSE '{{}}'::jsonb END",
        "plan_index": "0", "fallback_step": "''",
        "used_failsafe": "r6 > 0.995", "failsafe_reason": "''", "recording_url": "''", "voicemail_url": "''",
        "conversion_status": "CASE WHEN r2 < 0.68 AND r3 > 0.5 THEN 'converted' ELSE 'not_converted' END",
        "converted": "r2 < 0.68 AND r3 > 0.5",
        "revenue_converted": "r2 < 0.68 AND r3 > 0.5",
        "payout_converted": "r2 < 0.68 AND r3 > 0.6",
        "converted_at": "CASE WHEN r2 < 0.68 AND r3 > 0.5 THEN now() - (r5 * interval '90 days') + interval '3 minutes' END",
        "conversion_reason": "''", "payout_reason": "''",
        "revenue": "CASE WHEN r2 < 0.68 AND r3 > 0.5 THEN 25 + (r4 * 4)::int * 5 ELSE 0 END",
        "payout": "CASE WHEN r2 < 0.68 AND r3 > 0.6 THEN 10 + (r4 * 2)::int * 5 ELSE 0 END",
    }
    with connection.cursor() as cursor:
        # Columns other branches add later (NOT NULL, no default) get a neutral value by type.
        cursor.execute(
            "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'tracking_call'"
            " AND is_nullable = 'NO' AND column_default IS NULL AND column_name <> 'id'"
        )
        neutral = {"text": "''", "character varying": "''", "boolean": "false", "jsonb": "'{}'::jsonb", "integer": "0",
                   "smallint": "0", "bigint": "0", "numeric": "0", "timestamp with time zone": "now()"}
        for name, kind in cursor.fetchall():
            columns.setdefault(name, neutral.get(kind, "''"))
        cursor.execute("SELECT setseed(0.42)")
        cursor.execute(
            f"INSERT INTO tracking_call ({', '.join(columns)}) SELECT {', '.join(columns.values())} FROM ("
            " SELECT g, random() r1, random() r2, random() r3, random() r4, random() r5, random() r6"
            f" FROM generate_series(1, {count}) g) s"
        )
        # A pool that ran out of numbers in the last 30 days (the dashboard's alert).
        cursor.execute(
            "INSERT INTO numbers_numbersession (pool_id, visitor_id, started_at, last_seen_at, expires_at, page_url, landing_page,"
            " referrer, destination_number, marketing_data, is_overflow)"
            f" SELECT {pools[0].pk}, 'v' || g, now() - g * interval '1 hour', now(), now(), '', '', '', '', '{{}}', true"
            " FROM generate_series(1, 40) g"
        )
        # The bench loaded every day at once (nothing else writes): the rollups of all days follow.
        cursor.execute("TRUNCATE tracking_callrollupdirty")
        cursor.execute("ANALYZE")


def timed(fn, repeat: int) -> tuple[float, object]:
    fn()  # warm up (template loading, first query plans)
    times, result = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def measure(repeat: int) -> None:
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.urls import NoReverseMatch, reverse

    from calltrack import reports
    from calltrack.scoping import Scope
    from tracking.models import Call, Source

    user, _ = get_user_model().objects.get_or_create(username="bench-admin", defaults={"is_staff": True, "is_superuser": True})
    from django.conf import settings

    settings.AXES_ENABLED = False  # force_login has no client address for django-axes' login log
    client = Client()
    client.force_login(user)
    period = reports.period_for("30d")
    source = Source.objects.order_by("id").first()
    number = Call.objects.filter(started_at__gte=period.start).values_list("caller_number", flat=True).first()

    def get(url: str):
        response = client.get(url)
        assert response.status_code == 200, (url, response.status_code)
        return response

    rows: list[tuple[str, float, str, float | None]] = []

    def row(name: str, seconds: float, note: str = "", target: float | None = None) -> None:
        rows.append((name, seconds, note, target))
        flag = "" if target is None else ("  OK" if seconds <= target else "  SLOW")
        print(f"{name:<44} {seconds * 1000:8.1f} ms  {note}{flag}", flush=True)

    calls_30d = reports.report_summary(scope=Scope(), period=period).current.calls
    print(f"{Call.objects.count():,} calls; {calls_30d:,} in the last 30 days; median of {repeat} runs after a warm-up")
    t, _ = timed(lambda: get(reverse("admin:index") + "?range=30d"), repeat)
    row("dashboard, last 30 days (whole admin page)", t, "", 1.0)
    t, _ = timed(lambda: reports.report_summary(scope=Scope(), period=period), repeat)
    row("  selector: summary + previous period", t)
    t, _ = timed(lambda: reports.report_timeseries(scope=Scope(), period=period), repeat)
    row("  selector: time series by day", t)
    t, _ = timed(lambda: reports.report_breakdown(scope=Scope(), period=period, by="source"), repeat)
    row("  selector: breakdown by source", t)
    t, _ = timed(lambda: reports.report_breakdown(scope=Scope(), period=period, by="utm_campaign"), repeat)
    row("  selector: breakdown by UTM campaign", t)
    t, _ = timed(lambda: reports.report_alerts(scope=Scope(), period=period), repeat)
    row("  selector: alerts", t)
    t, _ = timed(lambda: get(reverse("admin:index") + "?range=30d&sort=-revenue"), repeat)
    row("dashboard, 30 days, sorted by revenue", t, "", 1.0)
    t, _ = timed(lambda: get(reverse("admin:index") + "?range=30d&by=utm_campaign"), repeat)
    row("dashboard, 30 days, by UTM campaign", t, "", 1.0)
    t, _ = timed(lambda: get(reverse("admin:index") + "?range=today"), repeat)
    row("dashboard, today (by hour)", t, "", 1.0)
    t, _ = timed(lambda: get("/api/v1/reports/summary?range=30d"), repeat)
    row("API /reports/summary?range=30d", t, "", 1.0)

    late = Call.objects.filter(started_at__gte=period.start + timedelta(days=10), status="no_answer").order_by("started_at").first()
    Call.objects.filter(pk=late.pk).update(status="completed", answered_at=late.started_at)
    t, _ = timed(lambda: get(reverse("admin:index") + "?range=30d"), repeat)
    row("dashboard, 30 days, after a late callback", t, "(its day read from the calls)", 1.0)
    Call.objects.filter(pk=late.pk).update(status="no_answer", answered_at=None)
    from tracking.services.reports import report_rollups_refresh

    t0 = time.perf_counter()
    report_rollups_refresh()
    row("rollup refresh of the changed day", time.perf_counter() - t0)

    log = reverse("admin:tracking_call_changelist")
    t, _ = timed(lambda: get(log), repeat)
    row("call log, first page", t, "", 0.3)
    window = reports.call_log_params(reports.period_for("7d"))
    filtered = f"{log}?{urlencode({'source__id__exact': source.pk, **window})}"
    t, _ = timed(lambda: get(filtered), repeat)
    row("call log, source + last 7 days", t, "", 0.3)
    t, _ = timed(lambda: get(f"{log}?q={number}"), repeat)
    row(f"call log, search {number}", t, "", 0.3)
    national = f"({number[2:5]}) {number[5:8]}-{number[8:]}"
    t, _ = timed(lambda: get(f"{log}?{urlencode({'q': national})}"), repeat)
    row(f"call log, search '{national}'", t, "", 0.3)

    try:
        export = reverse("admin:tracking_call_export")
    except NoReverseMatch:
        export = None
    if export is None:
        print("CSV export: TODO, the call log has no CSV export view (admin:tracking_call_export) on this branch yet")
    else:
        tracemalloc.start()
        t0 = time.perf_counter()
        response = client.get(export)
        lines = sum(chunk.count(b"\n") for chunk in response.streaming_content) if response.streaming else response.content.count(b"\n")
        seconds = time.perf_counter() - t0
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        written_by = "PostgreSQL COPY" if connection.vendor == "postgresql" else "Python csv"
        print(f"CSV export ({written_by}): {lines - 1:,} rows in {seconds:.1f} s ({(lines - 1) / seconds:,.0f} rows/s), "
              f"peak Python memory {peak / 1e6:.1f} MB  (target: under 60 s, flat memory)")
    print(f"process peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB; {connection.vendor}")
    slow = [name for name, seconds, _, target in rows if target is not None and seconds > target]
    print("all within targets" if not slow else f"over target: {', '.join(slow)}")


if __name__ == "__main__":
    main()
