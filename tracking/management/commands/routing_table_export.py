"""Write a lookup table's rows as CSV (value,handler,number): what routing_table_import reads back."""

from __future__ import annotations

import csv
import sys

from django.core.management.base import BaseCommand, CommandError, CommandParser

from tracking.models import RoutingTable
from tracking.services import lookup


class Command(BaseCommand):
    help = "Export a lookup table's rows as CSV (value,handler,number; handler as its id)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--table", type=int, required=True, help="The lookup table's id.")
        parser.add_argument("-o", "--output", default="-", help="The CSV file to write (default: standard output).")

    def handle(self, *args, **options) -> None:
        table = RoutingTable.objects.filter(pk=options["table"]).first()
        if table is None:
            raise CommandError(f"no lookup table {options['table']}")
        path = options["output"]
        try:
            out = open(path, "w", newline="", encoding="utf-8") if path != "-" else sys.stdout  # noqa: SIM115
        except OSError as exc:
            raise CommandError(f"cannot write {path}: {exc.strerror}") from None
        count = 0
        try:
            writer = csv.DictWriter(out, fieldnames=lookup.CSV_COLUMNS)
            writer.writeheader()
            for row in lookup.routing_table_rows_export(table=table):
                writer.writerow(row)
                count += 1
                if count % 10000 == 0 and path != "-":
                    self.stdout.write(f"  {count} rows")
        finally:
            if out is not sys.stdout:
                out.close()
        if path != "-":
            self.stdout.write(self.style.SUCCESS(f"{count} rows of '{table.name}' written to {path}"))
