"""Benchmark: the dashboard's spam panel (``calltrack.spam_figures``) at N calls over 90 days (PostgreSQL).

    .venv/bin/python bench/spam_panel.py [--calls 1000000] [--spam-share 0.05] [--database ct_bench_spam]

Loads the calls as ``bench/report.py`` does (first run), marks ``--spam-share`` of them as scored spam (the tags and
the mark the voice path writes: a reason or two, an action) and another as scored but clean, then times the panel's
figures for the last 30 days, for everybody and for one source, and the whole dashboard page.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1_000_000)
    parser.add_argument("--spam-share", type=float, default=0.05)
    parser.add_argument("--database", default="ct_bench_spam")
    parser.add_argument("--host", default="postgres@127.0.0.1:5432")
    parser.add_argument("--repeat", type=int, default=5)
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
    from django.db import connection
    from django.test.utils import setup_test_environment

    setup_test_environment()
    call_command("migrate", verbosity=0)
    call_command("createcachetable", verbosity=0)

    from bench.report import load
    from tracking.models import Call

    if Call.objects.count() < args.calls:
        load(args.calls)
    if not Call.objects.filter(tags__has_key="spam").exists():
        with connection.cursor() as cursor:
            # Scored calls: spam_share of them spam (their reasons and action vary), as many again scored and clean.
            cursor.execute(
                "UPDATE tracking_call SET tags = tags || jsonb_build_object('spam_score', '80', 'spam', 'yes'), decision = decision || "
                "jsonb_build_object('spam', jsonb_build_object('score', 80, 'is_spam', true, 'unpaid', false, "
                "'codes', (ARRAY['[\"attestation_failed\"]', '[\"caller_name\", \"repeat_dialer\"]', '[\"unpublished_number\"]'])[1 + id %% 3]::jsonb, "
                "'reasons', '[]'::jsonb, 'action', (ARRAY['reject', 'challenge', 'passed', 'not_payable', 'tag'])[1 + id %% 5])) "
                "WHERE random() < %s", [args.spam_share])
            cursor.execute(
                "UPDATE tracking_call SET tags = tags || jsonb_build_object('spam_score', '0', 'spam', 'no') "
                "WHERE NOT tags ? 'spam' AND random() < %s", [args.spam_share])
            cursor.execute("ANALYZE tracking_call")
    measure(args.repeat)


def measure(repeat: int) -> None:
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.test import Client
    from django.urls import reverse

    from bench.report import timed
    from calltrack import reports
    from calltrack.scoping import Scope
    from calltrack.spam_figures import spam_figures
    from tracking.models import Call, Source

    settings.AXES_ENABLED = False
    period = reports.period_for("30d")
    source = Source.objects.order_by("id").first()
    in_range = Call.objects.filter(started_at__gte=period.start).count()
    everybody = spam_figures(scope=Scope(), period=period)
    print(f"{Call.objects.count():,} calls, {in_range:,} in the last 30 days, {everybody.spam:,} of {everybody.scored:,} scored "
          f"over the threshold; median of {repeat} runs after a warm-up")
    t, _ = timed(lambda: spam_figures(scope=Scope(), period=period), repeat)
    print(f"spam figures, last 30 days, everybody      {t * 1000:8.1f} ms")
    t, _ = timed(lambda: spam_figures(scope=Scope(source_id=source.pk), period=period), repeat)
    print(f"spam figures, last 30 days, one source     {t * 1000:8.1f} ms")
    user, _ = get_user_model().objects.get_or_create(username="bench-admin", defaults={"is_staff": True, "is_superuser": True})
    client = Client()
    client.force_login(user)
    t, _ = timed(lambda: client.get(reverse("admin:index") + "?range=30d"), repeat)
    print(f"dashboard page, last 30 days (all panels)  {t * 1000:8.1f} ms")


if __name__ == "__main__":
    main()
