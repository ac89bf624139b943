from __future__ import annotations

from django.core.management.base import CommandError, CommandParser

from calltrack import phone
from calltrack.numbers.management.base import NumbersCommand, account_add_argument
from calltrack.numbers.models import NumberStatus, TrackingNumber
from calltrack.numbers.services.lifecycle import numbers_configure


class Command(NumbersCommand):
    help = (
        "Point numbers' voice URL, status callback and voice fallback URL (which dials each number's fail-safe "
        "when calltrack is down) at calltrack, at the carrier. Run it after changing a fail-safe number or "
        "CALLTRACK_PUBLIC_BASE_URL. Without numbers: every active number."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("numbers", nargs="*", help="Tracking numbers (default: every active number of the account).")
        account_add_argument(parser)

    def handle(self, *args, **options) -> None:
        account = self.account_choose(options["account"])
        qs = TrackingNumber.objects.select_related("campaign", "pool__campaign", "account").filter(account_id=account.pk)
        if options["numbers"]:
            try:
                wanted = [phone.to_e164(n) for n in options["numbers"]]
            except phone.InvalidPhoneNumber as exc:
                raise CommandError(str(exc)) from None
            qs = qs.filter(number__in=wanted)
            missing = set(wanted) - set(qs.values_list("number", flat=True))
            if missing:
                raise CommandError(f"Not our tracking numbers: {', '.join(sorted(missing))} (account '{account.slug}').")
        else:
            qs = qs.filter(status=NumberStatus.ACTIVE)
        numbers = list(qs.order_by("number"))
        failed = self.service(numbers_configure, numbers=numbers)
        for number, why in failed:
            self.stderr.write(f"{number} not configured: {why}")
        self.stdout.write(f"{len(numbers) - len(failed)} of {len(numbers)} numbers configured.")
        if failed:
            raise CommandError(f"{len(failed)} numbers could not be configured.")
