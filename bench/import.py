"""Benchmark: numbers_import of a 100,000-line CSV on PostgreSQL (target: under 60 s).

    /work/main/.venv/bin/python bench/import.py [--lines 100000] [--database ct_bench_import]

Creates the database if needed, migrates it, empties the numbers tables, writes
the CSV (not timed), then times ``manage.py numbers_import FILE`` (creates) and
``numbers_import FILE --update`` of the exported file (unchanged lines).
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument("--database", default="ct_bench_import")
    parser.add_argument("--host", default="postgres@127.0.0.1:5432")
    args = parser.parse_args()

    import psycopg

    with psycopg.connect(f"postgresql://{args.host}/postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [args.database]).fetchone():
            conn.execute(f'CREATE DATABASE "{args.database}"')
    os.environ["DATABASE_URL"] = f"postgres://{args.host}/{args.database}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "calltrack.settings")
    import django


    django.setup()
    import phonenumbers
    from django.core.management import call_command

    from calltrack.numbers.models import NumberEvent, NumberPool, TrackingNumber
    from tracking.models import Campaign, Source

    call_command("migrate", verbosity=0)
    NumberEvent.objects.all().delete()
    TrackingNumber.objects.all().delete()
    campaign, _ = Campaign.objects.get_or_create(campaign_id="bench", defaults={"name": "Bench"})
    Source.objects.get_or_create(source_id="bench-radio", defaults={"name": "Bench radio"})
    NumberPool.objects.get_or_create(key="bench-pool", defaults={"name": "Bench pool", "campaign": campaign})

    numbers: list[str] = []
    for area in ("212", "303", "415", "512", "617", "702", "808", "919"):
        for exchange in range(201, 999):
            if len(numbers) >= args.lines:
                break
            if not phonenumbers.is_valid_number(phonenumbers.parse(f"+1{area}{exchange}0000")):
                continue
            for line in range(0, 10000, 37):
                numbers.append(f"+1{area}{exchange}{line:04d}")
    numbers = numbers[: args.lines]
    assert len(numbers) == args.lines, "not enough numbers generated"
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "numbers.csv"
        with path.open("w") as out:
            out.write("number,label,kind,campaign,source,pool,marketing_data,utm_medium\n")
            for i, number in enumerate(numbers):
                if i % 3 == 0:
                    out.write(f'{number},,pool,,,bench-pool,,\n')
                else:
                    out.write(f'{number},Ad {i},static,bench,bench-radio,,"{{""utm_source"": ""radio""}}",cpc\n')
        started = time.perf_counter()
        call_command("numbers_import", str(path), stdout=io.StringIO())
        created = time.perf_counter() - started
        assert TrackingNumber.objects.count() == args.lines
        exported = Path(tmp) / "export.csv"
        call_command("numbers_export", "--output", str(exported), stdout=io.StringIO())
        started = time.perf_counter()
        out = io.StringIO()
        call_command("numbers_import", str(exported), "--update", stdout=out)
        updated = time.perf_counter() - started
    print(f"numbers_import: {args.lines} lines created in {created:.1f} s ({args.lines / created:,.0f} lines/s) on PostgreSQL")
    print(f"numbers_import --update of the export: {args.lines} lines checked in {updated:.1f} s -> {out.getvalue().strip().splitlines()[-1]}")
    print(f"events recorded: {NumberEvent.objects.count()}")


if __name__ == "__main__":
    main()
