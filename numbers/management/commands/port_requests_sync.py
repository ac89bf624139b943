from __future__ import annotations

from calltrack.numbers.management.base import NumbersCommand
from calltrack.numbers.services.porting import port_requests_sync


class Command(NumbersCommand):
    help = "Follow open port-in and port-out requests at the carrier now (also a scheduled task). Safe to run any time."

    def handle(self, *args, **options) -> None:
        counts = port_requests_sync()
        self.stdout.write(", ".join(f"{v} {k}" for k, v in counts.items()) + ".")
