from __future__ import annotations

from django.core.management.base import CommandError

from calltrack.numbers.management.base import NumbersCommand
from calltrack.numbers.services.lifecycle import numbers_release_quarantined


class Command(NumbersCommand):
    help = (
        "Release at the carrier every number whose quarantine has ended (also a scheduled task). "
        "Safe to run any time; a carrier failure leaves the number for the next run and exits 1."
    )

    def handle(self, *args, **options) -> None:
        report = numbers_release_quarantined(actor_label="numbers_release_quarantined")
        for number in report.released:
            self.stdout.write(f"{number} released")
        for number, why in report.failed:
            self.stderr.write(f"{number} not released: {why}")
        self.stdout.write(f"{len(report.released)} numbers released.")
        if report.failed:
            raise CommandError(f"{len(report.failed)} numbers could not be released; they stay quarantined for the next run.")
