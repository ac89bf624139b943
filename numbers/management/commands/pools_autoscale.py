from __future__ import annotations

from calltrack.numbers.management.base import NumbersCommand
from calltrack.numbers.services.pools import pool_samples_record, pools_autoscale


class Command(NumbersCommand):
    help = (
        "Autoscale pools now (also a scheduled task): each pool with autoscaling on is resized toward its peak of live "
        "sessions over CALLTRACK_AUTOSCALE_WINDOW_MINUTES x (1 + headroom), within its min and max. --sample first "
        "records a pool sample."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--sample", action="store_true", help="Record a sample of every pool first.")

    def handle(self, *args, sample: bool, **options) -> None:
        if sample:
            self.stdout.write(f"{len(pool_samples_record())} pools sampled.")
        resizes = pools_autoscale()
        for resize in resizes:
            self.stdout.write(f"{resize.pool}: {resize.from_size} -> {resize.to_size} ({resize.reason})")
        self.stdout.write(f"{len(resizes)} pools resized.")
