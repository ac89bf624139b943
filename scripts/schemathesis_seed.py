"""Seed a fresh database for the API fuzz run: a staff superuser with a token and a few objects of each kind.

Run with DJANGO_SETTINGS_MODULE=calltrack.settings and DATABASE_URL pointing at a migrated, empty database.
Prints the token on stdout.
"""

from __future__ import annotations

import os
import sys
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "calltrack.settings")

import django  # noqa: E402

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.utils import timezone  # noqa: E402
from rest_framework.authtoken.models import Token  # noqa: E402

from calltrack.numbers.models import NumberKind, NumberPool, NumberSession, ReceivingNumber, TrackingNumber  # noqa: E402
from tracking.models import Call, CallAttempt, Campaign, CampaignHandler, Handler, Source  # noqa: E402


def main() -> None:
    user = get_user_model().objects.create_superuser("fuzz-staff", "fuzz@example.com", "fuzz-staff-password-1")
    token = Token.objects.create(user=user)
    now = timezone.now()
    sources = [Source.objects.create(name=f"Source {n}") for n in range(3)]
    lines = [ReceivingNumber.objects.create(number=f"+1303555{n:04d}", label=f"Line {n}") for n in range(3)]
    handlers = [
        Handler.objects.create(
            name=f"Handler {n}", receiving_number=lines[n], always_open=n != 1,
            business_hours={"mon": ["09:00-17:00"]} if n == 1 else {},
            tag_criteria=[{"key": "caller_state", "op": "one_of", "value": ["CA", "NV"]}] if n == 2 else [],
        )
        for n in range(3)
    ]
    campaigns = [Campaign.objects.create(name=f"Campaign {n}") for n in range(2)]
    for n, handler in enumerate(handlers):
        CampaignHandler.objects.create(campaign=campaigns[0], handler=handler, position=n)
    pools = [NumberPool.objects.create(name=f"Pool {n}", campaign=campaigns[0], source=sources[n]) for n in range(2)]
    statics = [
        TrackingNumber.objects.create(number=f"+1415555{n:04d}", campaign=campaigns[0], source=sources[n % 3]) for n in range(3)
    ]
    pooled = [
        TrackingNumber.objects.create(number=f"+1415556{n:04d}", campaign=campaigns[0], kind=NumberKind.POOL, pool=pools[n % 2])
        for n in range(4)
    ]
    TrackingNumber.objects.create(number="+14155570000", campaign=campaigns[0], kind=NumberKind.POOL)
    for n, number in enumerate(pooled):
        NumberSession.objects.create(pool=number.pool, tracking_number=number, visitor_id=f"visitor-{n}", expires_at=now + timedelta(minutes=30))
    for n in range(5):
        call = Call.objects.create(
            call_sid=f"CAfuzz{n:026d}", caller_number=f"+1212555{n:04d}", called_number=statics[n % 3].number,
            tracking_number=statics[n % 3], campaign=campaigns[0], source=sources[n % 3], handler=handlers[n % 3],
            status="completed", duration=60 + n, talk_time=50 + n, revenue=Decimal("10.00"), payout=Decimal("4.00"),
            marketing_data={"utm_source": "google"}, started_at=now - timedelta(hours=n),
        )
        CallAttempt.objects.create(call=call, handler=handlers[n % 3], receiving_number=lines[n % 3], number_dialed=lines[n % 3].number, status="completed")
    print(token.key)


if __name__ == "__main__":
    main()
