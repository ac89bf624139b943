"""Fill a lookup table from a CSV file (value,handler,number)."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from calltrack.csv_import import LineDictReader
from tracking.models import RoutingTable
from tracking.services import lookup


class Command(BaseCommand):
    help = (
        "Import a lookup table's rows from a CSV with the columns value,handler,number (handler by id, buyer id or "
        "name; or a number). A value already in the table is updated. Every line is checked first."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="The CSV file ('-' for standard input).")
        parser.add_argument("--table", type=int, required=True, help="The lookup table's id.")
        parser.add_argument("--replace", action="store_true", help="Delete the table's rows first (in the same transaction).")
        parser.add_argument("--skip-invalid", action="store_true", help="Import the good lines and list the bad ones.")

    def handle(self, *args, **options) -> None:
        table = RoutingTable.objects.filter(pk=options["table"]).first()
        if table is None:
            raise CommandError(f"no lookup table {options['table']}")
        path = options["file"]
        try:
            handle = open(path, newline="", encoding="utf-8-sig") if path != "-" else None  # noqa: SIM115
        except OSError as exc:
            raise CommandError(f"cannot read {path}: {exc.strerror}") from None
        source = handle or sys.stdin
        try:
            reader = LineDictReader(source)
            missing = [c for c in ("value",) if c not in (reader.fieldnames or [])]
            if missing or not {"handler", "number"} & set(reader.fieldnames or []):
                raise CommandError(f"{Path(path).name}: the header must name value and handler and/or number")
            try:
                result = lookup.routing_table_rows_import(
                    table=table, lines=reader.numbered(), replace=options["replace"], skip_invalid=options["skip_invalid"],
                    progress=lambda n: self.stdout.write(f"  {n} rows written"),
                )
            except lookup.RowsError as exc:
                for n, column, why in exc.problems:
                    self.stderr.write(f"line {n}, {column}: {why}")
                raise CommandError(f"{len(exc.problems)} bad lines; nothing was imported (--skip-invalid imports the rest)") from None
            except (UnicodeDecodeError, csv.Error) as exc:
                raise CommandError(f"{Path(path).name} is not a readable CSV file: {exc}") from None
        finally:
            if handle is not None:
                handle.close()
        for n, column, why in result.skipped:
            self.stderr.write(f"skipped line {n}, {column}: {why}")
        self.stdout.write(self.style.SUCCESS(
            f"{result.written} rows written to '{table.name}'" + (f" (its {result.deleted} previous rows replaced)" if options["replace"] else "")
            + (f", {len(result.skipped)} lines skipped" if result.skipped else "")
        ))
