from __future__ import annotations

from calltrack.numbers.management.base import NumbersCommand, account_add_argument
from calltrack.numbers.services.porting import port_out_start


class Command(NumbersCommand):
    help = (
        "Mark numbers as porting out to another carrier. Calls keep routing until the port completes (followed by a "
        "scheduled task); then the numbers are released. Numbers already porting out are left as they are."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("numbers", nargs="+", help="Numbers to port out.")
        parser.add_argument("--to-carrier", required=True, help="The carrier the numbers go to.")
        account_add_argument(parser)

    def handle(self, *args, numbers: list[str], to_carrier: str, account: str | None, **options) -> None:
        account_id = self.account_choose(account).pk
        request = self.service(port_out_start, numbers=numbers, to_carrier=to_carrier, actor_label="port_out", account_id=account_id)
        self.stdout.write(f"Port-out #{request.pk} to {request.other_carrier}: {len(request.numbers)} numbers porting out.")
