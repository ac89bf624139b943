from __future__ import annotations

from pathlib import Path

from django.core.management.base import CommandError

from calltrack.numbers.management.base import NumbersCommand, account_add_argument
from calltrack.numbers.services.importing import EXPORT_ONLY_COLUMNS, RECEIVING_COLUMNS, TRACKING_COLUMNS, numbers_import


class Command(NumbersCommand):
    help = (
        "Import tracking numbers (or receiving numbers with --receiving) from a CSV file. "
        f"Tracking columns: {', '.join(TRACKING_COLUMNS)} (only 'number' is required; campaign, source and pool by their "
        "ID, key or name; marketing_data is a JSON object; carrier names the carrier holding the number, blank or "
        "absent: CALLTRACK_CARRIER; export-only columns "
        f"{', '.join(EXPORT_ONLY_COLUMNS)} are ignored). Receiving columns: {', '.join(RECEIVING_COLUMNS)}. "
        "Every line is checked first; any bad line is reported (line, column, reason) and nothing is written, "
        "unless --skip-invalid. Static number caps of sources are enforced over the whole file."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("file", help="The CSV file (UTF-8, first line names the columns).")
        parser.add_argument("--update", action="store_true", help="Change numbers that already exist instead of refusing them.")
        parser.add_argument("--skip-invalid", action="store_true", help="Import the good lines and report the bad ones.")
        parser.add_argument("--dry-run", action="store_true", help="Check the file and report what would change; write nothing.")
        parser.add_argument("--receiving", action="store_true", help="The file lists receiving numbers (the lines calls go to).")
        account_add_argument(parser)

    def handle(self, *args, file: str, update: bool, skip_invalid: bool, dry_run: bool, receiving: bool, account: str | None,
               **options) -> None:
        account_id = self.account_choose(account).pk
        path = Path(file)
        if not path.is_file():
            raise CommandError(f"{file}: no such file.")
        try:
            handle = path.open(newline="", encoding="utf-8-sig")
        except OSError as exc:
            raise CommandError(f"{file}: cannot be read ({exc.strerror}).")
        with handle:
            try:
                result = self.service(
                    numbers_import, file=handle, update=update, skip_invalid=skip_invalid, dry_run=dry_run, receiving=receiving,
                    actor_label="numbers_import", progress=self.progress_printer(path.name), account_id=account_id,
                )
            except UnicodeDecodeError:
                raise CommandError(f"{file}: not UTF-8 text; save the sheet as CSV UTF-8.")
        for problem in result.problems:
            self.stderr.write(f"skipped {problem}")
        verb = "would be" if dry_run else "were"
        self.stdout.write(
            f"{result.lines} lines: {result.created} numbers {verb} created, {result.updated} updated, "
            f"{result.unchanged} unchanged, {result.skipped} lines skipped."
        )
