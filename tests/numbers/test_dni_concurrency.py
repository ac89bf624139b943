"""Many visitors at the same moment, on PostgreSQL with real threads: no number shown to two live sessions."""

from __future__ import annotations

import threading
from collections import Counter

import pytest
from django.db import connection

from calltrack.numbers.dni.services import Visit, number_assign
from calltrack.numbers.models import NumberPool, NumberSession, OverflowPolicy
from tests.numbers.factories import NumberPoolFactory, TrackingNumberFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def run_at_once(count: int, work) -> list:
    """Run ``work(i)`` in ``count`` threads released together; re-raise the first error."""
    barrier = threading.Barrier(count)
    results: list = [None] * count
    errors: list[BaseException] = []

    def target(i: int) -> None:
        try:
            barrier.wait(timeout=30)
            results[i] = work(i)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=target, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    if errors:
        raise errors[0]
    return results


def make_pool(size: int, policy: str) -> NumberPool:
    pool = NumberPoolFactory(overflow_policy=policy, fallback_number="+18005550100")
    for i in range(size):
        TrackingNumberFactory(number=f"+1415{3000000 + i:07d}", kind="pool", pool=pool, campaign=pool.campaign)
    return pool


@pytest.mark.parametrize("policy", [OverflowPolicy.FALLBACK, OverflowPolicy.REUSE_OLDEST])
def test_fifty_visitors_at_once_on_a_pool_of_forty_get_forty_distinct_numbers_and_ten_overflow(policy):
    pool = make_pool(40, policy)

    results = run_at_once(50, lambda i: number_assign(pool=pool, visit=Visit(visitor_id=f"visitor-{i:04d}")))

    granted = [r for r in results if not r.overflow]
    overflowed = [r for r in results if r.overflow]
    assert len(granted) == 40
    assert len({r.number for r in granted}) == 40  # while numbers were free, never one number twice
    assert len(overflowed) == 10
    pool.refresh_from_db()
    assert pool.overflow_count == 10
    if policy == OverflowPolicy.FALLBACK:
        assert {r.number for r in overflowed} == {"+18005550100"}
    # Whatever the policy: no number is held by two live sessions at the end.
    live = Counter(NumberSession.objects.live().exclude(tracking_number=None).values_list("tracking_number", flat=True))
    assert live and max(live.values()) == 1
    assert len(live) == 40


def test_one_visitor_opening_ten_tabs_at_once_gets_one_session_and_one_number():
    pool = make_pool(20, OverflowPolicy.FALLBACK)

    results = run_at_once(10, lambda i: number_assign(pool=pool, visit=Visit(visitor_id="same-visitor")))

    assert len({r.session_id for r in results}) == 1
    assert len({r.number for r in results}) == 1
    assert NumberSession.objects.count() == 1
