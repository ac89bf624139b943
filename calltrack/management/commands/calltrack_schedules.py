from __future__ import annotations

from django.core.management.base import BaseCommand
from django_q.models import Schedule

from calltrack.schedules import SCHEDULES


class Command(BaseCommand):
    help = (
        "Create or update the django-q2 schedules calltrack needs (pool sampling each minute, pool autoscaling, "
        "releasing numbers whose quarantine ended, following port requests, closing expired postback waits). Idempotent: run it after every deploy."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--remove", action="store_true", help="Delete calltrack's schedules instead.")

    def handle(self, *args, remove: bool = False, **options) -> None:
        names = [name for name, *_ in SCHEDULES]
        if remove:
            deleted, _ = Schedule.objects.filter(name__in=names).delete()
            self.stdout.write(f"Removed {deleted} schedules.")
            return
        for name, func, schedule_type, minutes in SCHEDULES:
            values = {"func": func, "schedule_type": schedule_type, "minutes": minutes, "repeats": -1}
            existing = Schedule.objects.filter(name=name).first()
            if existing is None:
                Schedule.objects.create(name=name, **values)
                self.stdout.write(f"created  {name} ({func})")
            elif any(getattr(existing, k) != v for k, v in values.items()):
                for k, v in values.items():
                    setattr(existing, k, v)
                existing.save()
                self.stdout.write(f"updated  {name}")
            else:
                self.stdout.write(f"ok       {name}")
