from __future__ import annotations

import sys

from django.core.management.base import CommandError

from calltrack.numbers.management.base import NumbersCommand, account_add_argument, find_campaign, find_pool
from calltrack.numbers.models import NumberStatus, TrackingNumber
from calltrack.numbers.services.importing import numbers_export


class Command(NumbersCommand):
    help = (
        "Write tracking numbers with their assignments (campaign, source, pool, marketing data, fail-safe) as CSV: "
        "the file 'numbers_import --update' reads back. Released numbers are left out unless --include-released."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--output", "-o", default="-", help="File to write (default: standard output).")
        parser.add_argument("--pool", help="Only this pool's numbers (key, id or name).")
        parser.add_argument("--campaign", help="Only this campaign's numbers (campaign ID, id or name).")
        parser.add_argument("--status", choices=NumberStatus.values, help="Only numbers in this status.")
        parser.add_argument("--include-released", action="store_true", help="Include released numbers.")
        account_add_argument(parser)

    def handle(self, *args, output: str, pool: str | None, campaign: str | None, status: str | None, include_released: bool,
               account: str | None, **options) -> None:
        account_id = self.account_choose(account).pk
        numbers = TrackingNumber.objects.filter(account_id=account_id)
        if pool:
            numbers = numbers.filter(pool=find_pool(pool, account_id))
        if campaign:
            numbers = numbers.filter(campaign=find_campaign(campaign, account_id))
        if status:
            numbers = numbers.filter(status=status)
            include_released = include_released or status == NumberStatus.RELEASED
        if output == "-":
            count = numbers_export(out=sys.stdout if self.stdout._out is sys.stdout else self.stdout._out, numbers=numbers, include_released=include_released)
            self.stderr.write(f"{count} numbers exported.")
            return
        try:
            with open(output, "w", newline="", encoding="utf-8") as out:
                count = numbers_export(out=out, numbers=numbers, include_released=include_released)
        except OSError as exc:
            raise CommandError(f"{output}: cannot be written ({exc.strerror}).")
        self.stdout.write(f"{count} numbers exported to {output}.")
