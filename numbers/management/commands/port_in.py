from __future__ import annotations

from pathlib import Path

from django.core.management.base import CommandError

from calltrack.numbers.management.base import NumbersCommand, account_add_argument, find_campaign, find_pool, find_source
from calltrack.numbers.services.porting import port_in_create, port_in_numbers_from_csv


class Command(NumbersCommand):
    help = (
        "Start a port-in: move numbers from another carrier to ours. FILE.csv lists the numbers (a 'number' column, "
        "or one number a line). The numbers wait in status 'porting in' (no calls) while a scheduled task follows the "
        "request; on completion they become active tracking numbers of --pool, or static numbers of --campaign "
        "(credited to --source)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("file", help="CSV of the numbers to port.")
        parser.add_argument("--loa-name", required=True, help="Account holder signing the letter of authorization.")
        parser.add_argument("--loa-address", required=True, help="Service address on the losing carrier's account.")
        parser.add_argument("--from-carrier", default="", help="The carrier the numbers are with now.")
        parser.add_argument("--pool", help="The pool the numbers join (key, id or name).")
        parser.add_argument("--campaign", help="Static numbers: the campaign that routes them.")
        parser.add_argument("--source", help="Static numbers: the source credited with their calls.")
        parser.add_argument("--no-submit", action="store_true", help="Record the request; let the scheduled task submit it.")
        account_add_argument(parser)

    def handle(self, *args, file: str, loa_name: str, loa_address: str, from_carrier: str, pool: str | None,
               campaign: str | None, source: str | None, no_submit: bool, account: str | None, **options) -> None:
        account_id = self.account_choose(account).pk
        path = Path(file)
        if not path.is_file():
            raise CommandError(f"{file}: no such file.")
        if pool and (campaign or source):
            raise CommandError("Give --pool, or --campaign (and --source); not both.")
        numbers = self.service(port_in_numbers_from_csv, text=path.read_text(encoding="utf-8-sig"))
        request = self.service(
            port_in_create, numbers=numbers, loa_name=loa_name, loa_address=loa_address, other_carrier=from_carrier,
            pool=find_pool(pool, account_id) if pool else None, campaign=find_campaign(campaign, account_id) if campaign else None,
            source=find_source(source, account_id) if source else None, submit=not no_submit, actor_label="port_in",
        )
        line = f"Port-in #{request.pk} of {len(request.numbers)} numbers: {request.get_status_display().lower()}"
        if request.carrier_request_id:
            line += f" (carrier request {request.carrier_request_id})"
        if request.rejection_reason:
            line += f"; {request.rejection_reason}"
        self.stdout.write(line + ".")
        if request.status == "rejected":
            raise CommandError(f"The carrier rejected port-in #{request.pk}: {request.rejection_reason}")
