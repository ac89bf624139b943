"""Pools over the API: a pool's numbers, bulk add/remove (all or nothing, quarantine), live stats."""

from __future__ import annotations

from datetime import timedelta

import time_machine
from django.utils import timezone

from calltrack.numbers.models import NumberEvent, NumberKind, NumberStatus, TrackingNumber
from tests.numbers.factories import NumberPoolFactory, NumberSessionFactory, TrackingNumberFactory


def pool_numbers(n: int, **kwargs) -> list[TrackingNumber]:
    return [TrackingNumberFactory(kind=NumberKind.POOL, **kwargs) for _ in range(n)]


def test_adding_many_numbers_puts_them_in_the_pool_and_its_campaign(staff, staff_user, db):
    pool = NumberPoolFactory()
    numbers = pool_numbers(3)
    body = {"numbers": [numbers[0].number, numbers[1].formatted, numbers[2].number]}
    response = staff.post(f"/api/v1/pools/{pool.pk}/numbers/add/", body, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["changed"] == 3
    assert set(TrackingNumber.objects.filter(pool=pool).values_list("campaign_id", flat=True)) == {pool.campaign_id}
    event = NumberEvent.objects.filter(tracking_number=numbers[0]).get()
    assert event.actor == staff_user and "Added to pool" in event.reason
    # Repeating the request changes nothing.
    assert staff.post(f"/api/v1/pools/{pool.pk}/numbers/add/", body, format="json").json()["changed"] == 0


def test_one_bad_number_adds_none_and_every_problem_is_listed(staff, db):
    pool, other_pool = NumberPoolFactory(), NumberPoolFactory()
    good = pool_numbers(1)[0]
    elsewhere = pool_numbers(1, pool=other_pool)[0]
    quarantined = pool_numbers(1, status=NumberStatus.QUARANTINED)[0]
    body = {"numbers": [good.number, elsewhere.number, quarantined.number, "+14155550999", "12"]}
    response = staff.post(f"/api/v1/pools/{pool.pk}/numbers/add/", body, format="json")
    assert response.status_code == 400
    assert response.json()["numbers"] == ["number 5: '12' is not a valid phone number: too short."]
    body["numbers"] = body["numbers"][:4]
    problems = staff.post(f"/api/v1/pools/{pool.pk}/numbers/add/", body, format="json").json()["numbers"]
    assert problems == ["number 4 (+14155550999): no such tracking number"]
    body["numbers"] = body["numbers"][:3]
    problems = staff.post(f"/api/v1/pools/{pool.pk}/numbers/add/", body, format="json").json()["numbers"]
    assert len(problems) == 2
    assert problems[0].startswith(f"{elsewhere.number} is in pool '{other_pool}'")
    assert problems[1].startswith(f"{quarantined.number} is quarantined")
    good.refresh_from_db()
    assert good.pool_id is None
    assert not NumberEvent.objects.exists()


def test_a_static_number_added_to_a_pool_becomes_a_pool_number(staff, db):
    pool = NumberPoolFactory()
    static = TrackingNumberFactory(marketing_data={"utm_source": "billboard"})
    response = staff.post(f"/api/v1/pools/{pool.pk}/numbers/add/", {"numbers": [static.number]}, format="json")
    assert response.status_code == 200, response.content
    static.refresh_from_db()
    assert (static.kind, static.pool_id, static.marketing_data) == (NumberKind.POOL, pool.pk, {})


def test_removing_numbers_quarantines_them_for_the_configured_days(staff, settings, db):
    settings.CALLTRACK_QUARANTINE_DAYS = 10
    pool = NumberPoolFactory()
    numbers = pool_numbers(2, pool=pool)
    with time_machine.travel("2026-03-01 12:00Z", tick=False):
        response = staff.post(f"/api/v1/pools/{pool.pk}/numbers/remove/", {"numbers": [n.number for n in numbers]}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["changed"] == 2
    for number in numbers:
        number.refresh_from_db()
        assert number.status == NumberStatus.QUARANTINED
        assert number.quarantined_until.isoformat() == "2026-03-11T12:00:00+00:00"
        event = number.events.get()
        assert (event.from_status, event.to_status) == ("active", "quarantined")


def test_removing_a_number_of_another_pool_removes_nothing(staff, db):
    pool, other = NumberPoolFactory(), NumberPoolFactory()
    mine, theirs = pool_numbers(1, pool=pool)[0], pool_numbers(1, pool=other)[0]
    response = staff.post(f"/api/v1/pools/{pool.pk}/numbers/remove/", {"numbers": [mine.number, theirs.number]}, format="json")
    assert response.status_code == 400
    assert response.json() == {"numbers": [f"number 2 ({theirs.number}): does not serve this pool"]}
    mine.refresh_from_db()
    assert mine.pool_id == pool.pk and mine.status == NumberStatus.ACTIVE


def test_a_bulk_request_needs_a_list_of_numbers(staff, db):
    pool = NumberPoolFactory()
    assert staff.post(f"/api/v1/pools/{pool.pk}/numbers/add/", {"numbers": []}, format="json").status_code == 400
    assert list(staff.post(f"/api/v1/pools/{pool.pk}/numbers/add/", {}, format="json").json()) == ["numbers"]
    assert staff.post("/api/v1/pools/999999/numbers/add/", {"numbers": ["+14155550100"]}, format="json").status_code == 404


def test_pool_stats_count_live_sessions_numbers_in_use_and_overflows(staff, db):
    pool = NumberPoolFactory(overflow_count=4)
    numbers = pool_numbers(3, pool=pool)
    TrackingNumberFactory(kind=NumberKind.POOL, pool=pool, status=NumberStatus.RELEASED)
    now = timezone.now()
    NumberSessionFactory(pool=pool, tracking_number=numbers[0], expires_at=now + timedelta(minutes=5))
    NumberSessionFactory(pool=pool, tracking_number=numbers[0], expires_at=now + timedelta(minutes=9))
    NumberSessionFactory(pool=pool, tracking_number=numbers[1], expires_at=now + timedelta(minutes=5))
    NumberSessionFactory(pool=pool, tracking_number=numbers[2], expires_at=now - timedelta(minutes=1))  # expired
    NumberSessionFactory(pool=pool, tracking_number=None, is_overflow=True, expires_at=now + timedelta(minutes=5))
    TrackingNumberFactory(kind=NumberKind.POOL, pool=pool, status=NumberStatus.QUARANTINED)
    stats = staff.get(f"/api/v1/pools/{pool.pk}/stats/").json()
    assert stats == {"size": 3, "in_use": 2, "available": 1, "live_sessions": 4, "overflows": 4}
    assert staff.get(f"/api/v1/pools/{pool.pk}/").json()["size"] == 3


def test_a_pools_numbers_are_listed_and_paginated(staff, db):
    pool = NumberPoolFactory()
    numbers = pool_numbers(3, pool=pool)
    pool_numbers(2)
    page = staff.get(f"/api/v1/pools/{pool.pk}/numbers/", {"page_size": 2}).json()
    assert page["count"] == 3
    assert [row["number"] for row in page["results"]] == sorted(n.number for n in numbers)[:2]


def test_a_pool_with_numbers_cannot_be_deleted(staff, db):
    pool = NumberPoolFactory()
    pool_numbers(1, pool=pool)
    response = staff.delete(f"/api/v1/pools/{pool.pk}/")
    assert response.status_code == 400
    assert response.json() == {"numbers": ["The pool still has 1 active numbers; remove them first."]}
    empty = NumberPoolFactory()
    assert staff.delete(f"/api/v1/pools/{empty.pk}/").status_code == 204


def test_pool_settings_are_validated_by_the_model(staff, world):
    body = {"name": "Site", "campaign": world.campaign.pk, "overflow_policy": "fallback", "allowed_origins": "example.com"}
    errors = staff.post("/api/v1/pools/", body, format="json").json()
    assert errors["fallback_number"] == ["The 'fallback' overflow policy needs a fallback number."]
    assert "is not an origin" in errors["allowed_origins"][0]
    body.update(fallback_number="+14155550100", allowed_origins="https://www.example.com")
    response = staff.post("/api/v1/pools/", body, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["key"] == "site" and response.json()["size"] == 0
