from __future__ import annotations

from django.core.management.base import CommandError

from calltrack.numbers.management.base import NumbersCommand, account_add_argument, find_pool
from calltrack.numbers.services.lifecycle import numbers_release, quarantine_days


class Command(NumbersCommand):
    help = (
        "Release tracking numbers: they are quarantined for CALLTRACK_QUARANTINE_DAYS (calls go to their campaign's "
        "fail-safe meanwhile), then numbers_release_quarantined gives them back to the carrier. Either list numbers, "
        "or take --count idle numbers (least recently shown) out of --pool. Numbers already released or quarantined "
        "are left as they are."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("numbers", nargs="*", help="Numbers to release (E.164 or national format).")
        parser.add_argument("--pool", help="Release idle numbers of this pool (key, id or name).")
        parser.add_argument("--count", type=int, help="With --pool: how many.")
        parser.add_argument("--reason", default="", help="Why, for the number's history.")
        account_add_argument(parser)

    def handle(self, *args, numbers: list[str], pool: str | None, count: int | None, reason: str, account: str | None, **options) -> None:
        account_id = self.account_choose(account).pk
        if numbers and (pool or count):
            raise CommandError("Give numbers, or --pool and --count; not both.")
        if not numbers and not (pool and count):
            raise CommandError("Give the numbers to release, or --pool P --count N.")
        if count is not None and count < 1:
            raise CommandError("--count must be at least 1.")
        changed = self.service(
            numbers_release, numbers=numbers or None, pool=find_pool(pool, account_id) if pool else None, count=count,
            reason=reason, actor_label="numbers_release", account_id=account_id,
        )
        for number in changed:
            self.stdout.write(f"{number.number} quarantined until {number.quarantined_until:%Y-%m-%d %H:%M}")
        self.stdout.write(f"{len(changed)} numbers quarantined for {quarantine_days()} days.")
