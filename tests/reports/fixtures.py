"""A small, varied set of calls for the report tests, and the counts made from those rows in Python."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from tests.numbers.factories import NumberPoolFactory, NumberSessionFactory, TrackingNumberFactory
from tests.tracking.factories import CallFactory, CampaignFactory, HandlerFactory, SourceFactory
from tracking.models import Call, CallStatus

STATUSES = [CallStatus.COMPLETED, CallStatus.COMPLETED, CallStatus.NO_ANSWER, CallStatus.BUSY, CallStatus.REJECTED, CallStatus.RINGING]


@dataclass
class World:
    sources: list
    campaigns: list
    handlers: list
    numbers: list
    pool: object
    calls: list[Call]


def make_world(*, now: datetime, days: int = 20, count: int = 120, seed: int = 3) -> World:
    """``count`` calls spread over the ``days`` days before ``now``, with every outcome, two sources, two
    campaigns, two handlers, a pool number, UTM values (some missing), states, conversions and fail-safes."""
    rng = random.Random(seed)
    sources = [SourceFactory(name="Google Ads"), SourceFactory(name="Billboards")]
    campaigns = [CampaignFactory(name="Auto insurance"), CampaignFactory(name="Plumbing")]
    handlers = [HandlerFactory(name="Denver"), HandlerFactory(name="Chicago")]
    pool = NumberPoolFactory(name="Landing pages", campaign=campaigns[0], source=sources[0])
    numbers = [
        TrackingNumberFactory(campaign=campaigns[0], source=sources[0], label="Google ext"),
        TrackingNumberFactory(campaign=campaigns[1], source=sources[1]),
        TrackingNumberFactory(campaign=campaigns[0], pool=pool, kind="pool"),
    ]
    calls = []
    for i in range(count):
        started = now - timedelta(minutes=rng.randint(1, days * 24 * 60))
        tn = rng.choice(numbers)
        status = rng.choice(STATUSES)
        answered = status == CallStatus.COMPLETED
        handler = None if status == CallStatus.REJECTED else rng.choice(handlers + [None])
        converted = answered and rng.random() < 0.5
        side = rng.choice(["both", "revenue", "payout"]) if converted else ""
        marketing = rng.choice([{}, {"utm_source": "google", "utm_medium": "cpc", "utm_campaign": "brand"}, {"utm_source": "radio"}, {"utm_source": ""}])
        session = NumberSessionFactory(pool=pool, tracking_number=tn) if tn.pool_id else None
        calls.append(CallFactory(
            tracking_number=tn, campaign=tn.campaign, source=tn.source or pool.source, handler=handler, session=session,
            status=status, started_at=started, answered_at=started + timedelta(seconds=5) if answered else None,
            talk_time=rng.randint(10, 400) if answered else 0, caller_state=rng.choice(["CA", "NY", ""]),
            marketing_data=marketing, used_failsafe=rng.random() < 0.1,
            converted=converted, revenue_converted=side in ("both", "revenue"), payout_converted=side in ("both", "payout"),
            revenue=Decimal(rng.choice([25, 45])) if side in ("both", "revenue") else Decimal("0"),
            payout=Decimal(rng.choice([10, 15])) if side in ("both", "payout") else Decimal("0"),
            decision={"skipped": [{"handler_id": handlers[0].pk, "name": "Denver", "reason": "capped", "detail": "daily cap 5 reached"}]} if i % 17 == 0 else {},
        ))
    return World(sources, campaigns, handlers, numbers, pool, calls)


def expected(calls: list[Call], start: datetime, end: datetime, *, side: str = "any") -> dict:
    """The headline figures counted from the rows, in Python."""
    rows = [c for c in calls if start <= c.started_at < end]
    answered = [c for c in rows if c.answered_at is not None]
    blocked = [c for c in rows if c.answered_at is None and c.status == CallStatus.REJECTED]
    live = [c for c in rows if c.answered_at is None and c.status in (CallStatus.RINGING, CallStatus.IN_PROGRESS)]
    conv = {"any": lambda c: c.converted, "revenue": lambda c: c.revenue_converted, "payout": lambda c: c.payout_converted}[side]
    return {
        "calls": len(rows),
        "answered": len(answered),
        "blocked": len(blocked),
        "live": len(live),
        "missed": len(rows) - len(answered) - len(blocked) - len(live),
        "converted": sum(1 for c in rows if conv(c)),
        "failsafe": sum(1 for c in rows if c.used_failsafe),
        "talk_time": sum(c.talk_time for c in answered),
        "revenue": sum((c.revenue for c in rows), Decimal("0")),
        "payout": sum((c.payout for c in rows), Decimal("0")),
    }


def local_midnight(day, tz: str) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(tz))
