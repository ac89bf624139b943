"""Benchmark of the call log's CSV export: a million calls streamed in constant memory (PostgreSQL).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/ct_bench_export python bench/call_export.py [--calls 1000000] [--python] [--tracemalloc]

Migrates the database named by DATABASE_URL (use a scratch one: it inserts rows), tops its calls up to ``--calls``
with one INSERT ... SELECT generate_series (sources and campaigns joined, UTM data set), then streams the admin's
export view (CallAdmin.export_csv_view, as a superuser, no filter) to /dev/null and prints rows, seconds, rows per
second and the process's peak memory before and after the export (ru_maxrss): flat memory means the rows were
streamed, not loaded. The view's CSV is written by PostgreSQL (COPY); ``--python`` then also times the Python
path (rows read by the ORM, written by the csv module) for comparison. ``--tracemalloc`` also prints the peak of
the Python memory allocated during each export (tracemalloc: exact, but it slows the Python path several times).
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
import tracemalloc
from pathlib import Path
from unittest import mock

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "calltrack.settings")
os.environ.setdefault("DEBUG", "true")


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=1_000_000)
    parser.add_argument("--python", action="store_true", help="also time the Python path (after the COPY one)")
    parser.add_argument("--tracemalloc", action="store_true", help="also trace the Python memory allocated (slower)")
    args = parser.parse_args()

    import django

    django.setup()
    from django.contrib.admin.sites import site
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection
    from django.test import RequestFactory

    from tracking.models import Call, Campaign, Source

    if connection.vendor != "postgresql":
        sys.exit("set DATABASE_URL to a scratch PostgreSQL database")
    call_command("migrate", verbosity=0)
    sources = [Source.objects.get_or_create(source_id=f"bench-src-{i}", defaults={"name": f"Bench source {i}"})[0].pk for i in range(20)]
    campaigns = [Campaign.objects.get_or_create(campaign_id=f"bench-cmp-{i}", defaults={"name": f"Bench campaign {i}"})[0].pk for i in range(10)]
    missing = args.calls - Call.objects.count()
    if missing > 0:
        started = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute(
                """
                INSERT INTO tracking_call (call_sid, caller_number, called_number, caller_city, caller_state, caller_zip,
                    caller_country, status, reject_reason, started_at, duration, talk_time, last_sequence, tags,
                    marketing_data, landing_page, referrer, visitor_id, decision, plan_index, fallback_step, used_failsafe,
                    failsafe_reason, recording_url, voicemail_url, conversion_status, converted, conversion_reason,
                    revenue_converted, payout_converted, revenue, payout, payout_reason, source_id, campaign_id,
                    recording_sid, recording_status, recording_duration)
                SELECT 'CABENCH' || lpad(g::text, 26, '0'), '+1415555' || lpad((g %% 10000)::text, 4, '0'), '+18005550100',
                    'SAN FRANCISCO', 'CA', '94103', 'US', 'completed', '', now() - (g %% 7776000) * interval '1 second',
                    60 + g %% 300, 50 + g %% 290, -1, '{}'::jsonb,
                    jsonb_build_object('utm_source', CASE WHEN g %% 3 = 0 THEN 'google' ELSE '=cmd|calc' END, 'utm_medium', 'cpc'),
                    'https://example.com/landing', '', 'v' || g, '{}'::jsonb, 0, '', false, '', '', '',
                    'converted', g %% 4 = 0, '', g %% 4 = 0, g %% 4 = 0, (g %% 4 = 0)::int * 25, (g %% 4 = 0)::int * 10, '',
                    (%s::bigint[])[1 + g %% %s], (%s::bigint[])[1 + g %% %s], '', '', 0
                FROM generate_series(1, %s) AS g
                """,
                [sources, len(sources), campaigns, len(campaigns), missing],
            )
        print(f"inserted {missing:,} calls in {time.perf_counter() - started:.1f} s")
    user, _ = get_user_model().objects.get_or_create(username="bench-export", defaults={"is_staff": True, "is_superuser": True})
    request = RequestFactory().get("/admin/tracking/call/export.csv")
    request.user = user
    model_admin = site._registry[Call]
    export(model_admin, request, "COPY (PostgreSQL writes the CSV)", traced=args.tracemalloc)
    if args.python:
        with mock.patch("calltrack.csv_export.csv_copy_supported", return_value=False):
            export(model_admin, request, "Python (ORM rows, csv module)", traced=args.tracemalloc)


def export(model_admin, request, label: str, *, traced: bool) -> None:
    before = peak_mb()
    if traced:
        tracemalloc.start()
    started = time.perf_counter()
    response = model_admin.export_csv_view(request)
    lines = size = pieces = 0
    with open(os.devnull, "wb") as sink:
        for chunk in response.streaming_content:
            sink.write(chunk)
            size += len(chunk)
            lines += chunk.count(b"\n")  # the bench's cells hold no line breaks: one per row
            pieces += 1
    seconds = time.perf_counter() - started
    rows = lines - 1  # the header
    if traced:
        label += f" [Python allocations peak {tracemalloc.get_traced_memory()[1] / 1e6:.1f} MB]"
        tracemalloc.stop()
    print(f"{label}: exported {rows:,} rows ({size / 1e6:.0f} MB, {pieces:,} pieces) in {seconds:.1f} s = {rows / seconds:,.0f} rows/s; "
          f"peak memory {before:.0f} MB before, {peak_mb():.0f} MB after")

if __name__ == "__main__":
    main()
