"""Hand-written statements against their ORM twins on the same fixtures: the DNI pick-and-open in one
PostgreSQL statement against the fallback path, and the import's COPY against fastdb.insert_many."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from calltrack import fastdb
from calltrack.numbers.dni import services as dni
from calltrack.numbers.dni.matching import ANY
from calltrack.numbers.models import NumberPool, NumberSession, TrackingNumber
from calltrack.numbers.services.importing import _bulk_insert
from tests.numbers.factories import NumberPoolFactory, TrackingNumberFactory

pytestmark = pytest.mark.django_db


class _Rollback(Exception):
    pass


def _outcome(run) -> dict:
    """What a way of opening a session changed, then rolled back so the other way starts from the same rows."""
    seen: dict = {}
    try:
        with transaction.atomic():
            session_id, number = run()
            session = NumberSession.objects.get(pk=session_id)
            seen = {
                "number": number,
                "session": {f.attname: getattr(session, f.attname) for f in NumberSession._meta.concrete_fields if f.attname != "id"},
                "numbers": sorted(
                    (n.number, n.last_assigned_at, n.current_session_id == session_id)
                    for n in TrackingNumber.objects.filter(pool=session.pool_id)),
                "ended": sorted(NumberSession.objects.filter(expires_at=session.started_at).exclude(pk=session_id).values_list("visitor_id", flat=True)),
            }
            raise _Rollback
    except _Rollback:
        pass
    return seen


@pytest.mark.postgres
def test_the_one_statement_pick_opens_the_same_session_as_the_fallback_path():
    now = timezone.now().replace(microsecond=0)
    pool = NumberPoolFactory(key="parity", session_lifetime=600)
    numbers = [TrackingNumberFactory(number=f"+1415300{i:04d}", kind="pool", pool=pool, campaign=pool.campaign) for i in range(4)]
    # The least recently assigned free number was held by a session that is still live (lifetime shortened since).
    old = NumberSession.objects.create(pool=pool, tracking_number=numbers[2], visitor_id="old", started_at=now - timedelta(hours=2),
                                       last_seen_at=now - timedelta(hours=2), expires_at=now + timedelta(hours=1))
    stamps = [now - timedelta(minutes=5), None, now - timedelta(hours=3), now - timedelta(hours=1)]
    for n, stamp in zip(numbers, stamps, strict=True):
        TrackingNumber.objects.filter(pk=n.pk).update(last_assigned_at=stamp, current_session=old if n == numbers[2] else None)
    visit = dni.Visit(visitor_id="v1", page_url="https://example.com/a", referrer="https://google.com/", marketing_data={"utm_source": "g"},
                      destination="+14155550100", ip_address="203.0.113.9")

    def one_statement():
        opened = dni._pg_open(pool=pool, tiers=[ANY], visit=visit, now=now, overflow=False)
        return None if opened is None else opened[:2]

    def fallback():
        number = dni._take_free_number(pool=pool, tiers=[ANY], now=now)
        a = dni._open_session(pool=pool, number=number, visit=visit, now=now, overflow=False, returning=False)
        return a.session_id, a.number

    fast, orm = _outcome(one_statement), _outcome(fallback)
    assert fast["number"] == numbers[1].number  # never assigned comes first
    assert fast == orm
    # Once every number is recently assigned, neither finds one.
    TrackingNumber.objects.filter(pool=pool).update(last_assigned_at=now)
    assert one_statement() is None and dni._take_free_number(pool=pool, tiers=[ANY], now=now) is None


@pytest.mark.postgres
@pytest.mark.parametrize("policy", ["reuse_oldest", "fallback"])
def test_the_one_statement_overflow_opens_the_same_session_as_the_fallback_path(policy, settings):
    settings.CALLTRACK_DNI_TAKEOVER_MIN_AGE = 300
    now = timezone.now().replace(microsecond=0)
    pool = NumberPoolFactory(key="parity-full", session_lifetime=600, overflow_policy=policy, fallback_number="+18005550100")
    numbers = [TrackingNumberFactory(number=f"+1415301{i:04d}", kind="pool", pool=pool, campaign=pool.campaign) for i in range(3)]
    # Every number shown within the session lifetime: none is free. Only the middle one's holder is old enough to lose it.
    for i, (n, started) in enumerate(zip(numbers, [now - timedelta(minutes=1), now - timedelta(minutes=9), now - timedelta(minutes=2)],
                                         strict=True)):
        holder = NumberSession.objects.create(pool=pool, tracking_number=n, visitor_id=f"holder-{i}", started_at=started,
                                              last_seen_at=started, expires_at=now + timedelta(minutes=5))
        TrackingNumber.objects.filter(pk=n.pk).update(last_assigned_at=now - timedelta(minutes=5 - i), current_session=holder)
    visit = dni.Visit(visitor_id="v2", page_url="https://example.com/b", marketing_data={"utm_source": "b"}, destination="+14155550100")

    def one_statement():
        session_id, number, overflow = dni._pg_open(pool=pool, tiers=[ANY], visit=visit, now=now)
        assert overflow
        return session_id, number

    def fallback():
        NumberPool.objects.filter(pk=pool.pk).update(overflow_count=F("overflow_count") + 1)
        number = dni._take_oldest_number(pool=pool, tiers=[ANY], now=now) if policy == "reuse_oldest" else None
        a = dni._open_session(pool=pool, number=number, visit=visit, now=now, overflow=True, returning=False)
        return a.session_id, a.number if number else None

    def counted(run):
        def both():
            outcome = run()
            counts.append(NumberPool.objects.get(pk=pool.pk).overflow_count)
            return outcome
        return both

    counts: list[int] = []
    fast, orm = _outcome(counted(one_statement)), _outcome(counted(fallback))
    assert fast == orm and counts == [1, 1]
    if policy == "reuse_oldest":
        assert fast["number"] == numbers[1].number and fast["ended"] == ["holder-1"]
    else:
        assert fast["number"] is None and fast["session"]["tracking_number_id"] is None


def test_the_imports_bulk_insert_stores_what_fastdb_insert_many_stores():
    pool = NumberPoolFactory()

    now = timezone.now()

    def rows(prefix: int) -> list[TrackingNumber]:
        made = [TrackingNumber(number=f"+1415{prefix}00{i:04d}", kind="pool", pool=pool, campaign=pool.campaign, area_code="415",
                               country="US", marketing_data={"utm_source": f"s{i}", "n": [i]}, label=f"Line {i}", created_at=now)
                for i in range(3)]
        for tn in made:
            tn.updated_at = now  # as the import sets them (COPY runs no pre_save)
        return made

    copied, inserted = rows(7), rows(8)
    _bulk_insert(copied, returning_ids=True, key="number")  # COPY on PostgreSQL, bulk_create elsewhere
    fastdb.insert_many(inserted)

    def stored(prefix: int) -> list[dict]:
        out = []
        for values in TrackingNumber.objects.filter(number__startswith=f"+1415{prefix}").order_by("number").values():
            values.pop("id")
            assert values.pop("created_at") and values.pop("updated_at")  # set by the import, or on save
            values["number"] = values["number"][6:]
            out.append(values)
        return out

    assert stored(7) == stored(8) and len(stored(7)) == 3
    assert all(n.pk is not None for n in copied)
    if connection.vendor == "postgresql":
        assert {n.pk for n in copied} == set(TrackingNumber.objects.filter(number__startswith="+14157").values_list("pk", flat=True))
