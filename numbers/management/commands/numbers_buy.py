from __future__ import annotations

import json

from django.core.management.base import CommandError

from calltrack.numbers.management.base import NumbersCommand, account_add_argument, find_campaign, find_pool, find_source
from calltrack.numbers.services.lifecycle import MAX_BUY, BuyTarget, numbers_buy


class Command(NumbersCommand):
    help = (
        "Buy tracking numbers at the carrier (CALLTRACK_CARRIER; 'local' simulates one) with our voice and status "
        "webhooks set, into a pool or as static numbers of a campaign (credited to a source, within its static number "
        "cap). Buys nothing unless the carrier offers all of them."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--count", type=int, required=True, help=f"How many numbers (1-{MAX_BUY}).")
        where = parser.add_mutually_exclusive_group(required=True)
        where.add_argument("--area-code", help="Local numbers in this area code (e.g. 415).")
        where.add_argument("--toll-free", action="store_true", help="Toll-free numbers.")
        where.add_argument("--near", help="Numbers like this one: same area code (or toll-free).")
        parser.add_argument("--contains", default="", help="Digits the numbers should contain (vanity).")
        parser.add_argument("--pool", help="The pool the numbers join (key, id or name).")
        parser.add_argument("--campaign", help="Static numbers: the campaign that routes them.")
        parser.add_argument("--source", help="Static numbers: the source credited with their calls.")
        parser.add_argument("--label", default="", help="Label for the new numbers.")
        parser.add_argument("--marketing-data", default="", help='Static numbers: JSON object, e.g. {"utm_source": "radio"}.')
        account_add_argument(parser)

    def handle(self, *args, count: int, area_code: str | None, toll_free: bool, near: str | None, contains: str,
               pool: str | None, campaign: str | None, source: str | None, label: str, marketing_data: str, account: str | None,
               **options) -> None:
        account_id = self.account_choose(account).pk
        if pool and (campaign or source):
            raise CommandError("Give --pool, or --campaign (and --source); not both.")
        if not pool and not campaign:
            raise CommandError("Say where the numbers go: --pool P, or --campaign C (and --source S).")
        data = {}
        if marketing_data:
            try:
                data = json.loads(marketing_data)
            except ValueError as exc:
                raise CommandError(f"--marketing-data: not valid JSON ({exc}).")
            if not isinstance(data, dict):
                raise CommandError("--marketing-data: must be a JSON object.")
        target = BuyTarget(
            pool=find_pool(pool, account_id) if pool else None, campaign=find_campaign(campaign, account_id) if campaign else None,
            source=find_source(source, account_id) if source else None, label=label, marketing_data=data,
        )
        bought = self.service(
            numbers_buy, count=count, target=target, area_code=area_code or "", toll_free=toll_free, near=near or "",
            contains=contains, actor_label="numbers_buy",
        )
        for number in bought:
            self.stdout.write(f"{number.number}  {number.formatted}")
        self.stdout.write(f"Bought {len(bought)} numbers for {target.pool or target.campaign}.")
