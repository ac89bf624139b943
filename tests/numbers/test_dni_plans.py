"""PostgreSQL: a DNI overflow's cost grows neither with the install's session history nor with the pool's size (issue 26).

Sessions are never deleted: every page view of every visitor stays, for attribution and reports, so the session
table grows for the install's whole life. Here a pool overflows (every number held, the policy "reuse the oldest")
on an install with 20,000 sessions of earlier visitors, analysed, with the generic plan forced (the tag's statements
are prepared once per connection). Every plan PostgreSQL runs (nested ones included) must read sessions by index,
within a budget of buffers: the takeover check, an ``EXISTS`` under an ``OR``, had been run as a "hashed SubPlan"
that read and hashed every old session on each overflow (about 85 ms per statement with 200,000 of them; under
``bench/dni.py --history 200000`` an overflowing visitor's p50 was 356 ms).
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from calltrack.numbers.dni.services import Assignment, Visit, number_assign
from calltrack.numbers.models import NumberSession, TrackingNumber
from tests.numbers.factories import NumberPoolFactory, NumberSessionFactory, TrackingNumberFactory
from tests.pg_plans import generic_plans, plans_of, shared_buffers, sql

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]
HISTORY = 20_000
OTHER_NUMBERS = 2_000  # another pool's: the plan expects many numbers per pool, as in an install of several pools


def add_history(pool) -> None:
    """Earlier visitors' sessions, long over (each started more than CALLTRACK_DNI_TAKEOVER_MIN_AGE ago)."""
    sql(
        "INSERT INTO numbers_numbersession (pool_id, visitor_id, started_at, last_seen_at, expires_at, page_url, landing_page, "
        "referrer, destination_number, marketing_data, is_overflow) SELECT %s, 'old-' || g, now() - interval '3 days', "
        "now() - interval '3 days', now() - interval '2 days', '', '', '', '', '{}', false FROM generate_series(1, %s) g",
        [pool.pk, HISTORY],
    )


def two_new_visitors(pool, assert_max_queries) -> tuple[Assignment, Assignment, list[str]]:
    """Two new visitors of ``pool`` (its tables analysed now), as a connection's first requests under generic plans:
    the first prepares and plans the statements, the second runs them. Both assignments, and the second's plans."""
    sql("ANALYZE numbers_numbersession")
    sql("ANALYZE numbers_trackingnumber")
    with generic_plans():  # the plans kept for the connection's life
        first = number_assign(pool=pool, visit=Visit(visitor_id="visitor-first", destination="+14155550100"))
        assigned = []

        def second() -> None:
            with assert_max_queries(2):  # the visitor's look-up, then the open (overflow, takeover)
                assigned.append(number_assign(pool=pool, visit=Visit(visitor_id="visitor-second", destination="+14155550100")))

        plans = plans_of(second)
    return first, assigned[0], plans


def test_an_overflow_reads_the_holders_by_index_on_a_long_session_history(django_assert_max_num_queries):
    now = timezone.now()
    pool = NumberPoolFactory(key="plans", session_lifetime=1800, overflow_policy="reuse_oldest")
    for i in range(3):
        number = TrackingNumberFactory(number=f"+1415301{i:04d}", kind="pool", pool=pool, campaign=pool.campaign)
        # Held by live sessions that started 10 minutes ago: old enough to be taken over.
        holder = NumberSessionFactory(pool=pool, tracking_number=number, started_at=now - timedelta(minutes=10),
                                      last_seen_at=now, expires_at=now + timedelta(minutes=20))
        TrackingNumber.objects.filter(pk=number.pk).update(current_session=holder, last_assigned_at=now)
    other = NumberPoolFactory(key="other", campaign=pool.campaign)
    TrackingNumber.objects.bulk_create([
        TrackingNumber(number=f"+1415302{i:04d}", kind="pool", status="active", pool=other, campaign=pool.campaign, area_code="415")
        for i in range(OTHER_NUMBERS)
    ])
    add_history(pool)
    first, second, plans = two_new_visitors(pool, django_assert_max_num_queries)
    assert first.overflow and first.number
    assert NumberSession.objects.count() >= HISTORY
    assert second.overflow and second.number  # an older holder's number, taken over
    sessions = [p for p in plans if "numbers_numbersession" in p.split("plan:", 1)[1]]
    assert sessions
    scans = [line.strip() for p in plans for line in p.splitlines() if "Seq Scan on numbers_numbersession" in line or "hashed SubPlan" in line]
    assert not scans, (scans, plans)
    # The budget: a few index pages per holder visited, not the history's 20,000 rows (a scan: 300+ pages).
    assert max(shared_buffers(p) for p in plans) <= 100, [(shared_buffers(p), p.splitlines()[:2]) for p in plans]


def test_a_full_pool_costs_each_new_visitor_a_few_index_pages_not_a_walk_over_its_numbers(django_assert_max_num_queries):
    """Every number of a 2,000-number pool held by a young session (a flood of new visitors): nothing is free and nothing
    may be taken over. The free pick is a range of numbers_pool_lru_idx that ends at once, and the takeover considers
    the pool's TAKEOVER_CANDIDATES least recently shown numbers only; before, each tier's scan walked every number (and
    looked up each one's holder)."""
    now = timezone.now()
    pool = NumberPoolFactory(key="flooded", session_lifetime=1800, overflow_policy="reuse_oldest")
    TrackingNumber.objects.bulk_create([
        TrackingNumber(number=f"+1415303{i:04d}", kind="pool", status="active", pool=pool, campaign=pool.campaign, area_code="415",
                       last_assigned_at=now - timedelta(minutes=1))
        for i in range(OTHER_NUMBERS)
    ])
    sql(
        "INSERT INTO numbers_numbersession (pool_id, tracking_number_id, visitor_id, started_at, last_seen_at, expires_at, page_url, "
        "landing_page, referrer, destination_number, marketing_data, is_overflow) SELECT %s, t.id, 'holder-' || t.id, %s, %s, %s, "
        "'', '', '', '', '{}', false FROM numbers_trackingnumber t WHERE t.pool_id = %s",
        [pool.pk, now - timedelta(minutes=1), now - timedelta(minutes=1), now + timedelta(minutes=29), pool.pk],
    )
    sql("UPDATE numbers_trackingnumber t SET current_session_id = s.id FROM numbers_numbersession s WHERE s.tracking_number_id = t.id")
    add_history(pool)
    first, second, plans = two_new_visitors(pool, django_assert_max_num_queries)
    assert first.overflow and first.number is None  # no free number, none old enough to take: no number
    assert second.overflow and second.number is None
    assert any("numbers_pool_lru_idx" in p and "<=" in p for p in plans)  # "free" as a range of the index
    # The budget: a few index pages per tier and one look-up per takeover candidate, not 2,000 numbers (16,000+ pages).
    assert max(shared_buffers(p) for p in plans) <= 600, [(shared_buffers(p), p.splitlines()[:2]) for p in plans]
