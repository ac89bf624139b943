"""The DNI assignment service: one number per visitor, least recently assigned first, type for type, overflow."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from calltrack.numbers.dni.services import Visit, number_assign, session_heartbeat
from calltrack.numbers.models import NumberSession, NumberStatus, OverflowPolicy, PoolNumberType, TrackingNumber
from tests.numbers.factories import NumberPoolFactory, TrackingNumberFactory

pytestmark = pytest.mark.django_db


def add_numbers(pool, *numbers, **extra):
    return [TrackingNumberFactory(number=n, kind="pool", pool=pool, campaign=pool.campaign, **extra) for n in numbers]


@pytest.fixture
def now():
    return timezone.now().replace(microsecond=0)


@pytest.fixture
def pool():
    return NumberPoolFactory(session_lifetime=1800)


def visit(visitor: str, **kwargs) -> Visit:
    return Visit(visitor_id=visitor, **kwargs)


def test_new_visitor_gets_the_least_recently_assigned_free_number(pool, now):
    old, never, recent = add_numbers(pool, "+14152000001", "+14152000002", "+14152000003")
    TrackingNumber.objects.filter(pk=old.pk).update(last_assigned_at=now - timedelta(days=2))
    TrackingNumber.objects.filter(pk=recent.pk).update(last_assigned_at=now - timedelta(hours=1))

    first = number_assign(pool=pool, visit=visit("visitor-a1"), now=now)
    second = number_assign(pool=pool, visit=visit("visitor-b1"), now=now)
    third = number_assign(pool=pool, visit=visit("visitor-c1"), now=now)

    # Never shown first, then the one shown longest ago.
    assert [first.number, second.number, third.number] == [never.number, old.number, recent.number]
    assert not any(a.overflow for a in (first, second, third))
    never.refresh_from_db()
    assert never.last_assigned_at == now
    assert never.current_session_id == first.session_id


def test_a_returning_visitor_keeps_its_number_and_extends_its_session(pool, now):
    add_numbers(pool, "+14152000001", "+14152000002")
    first = number_assign(pool=pool, visit=visit("visitor-a1"), now=now)
    later = now + timedelta(minutes=20)

    again = number_assign(pool=pool, visit=visit("visitor-a1", page_url="https://shop.example.com/pricing"), now=later)

    assert again.number == first.number
    assert again.session_id == first.session_id
    assert again.returning is True
    assert again.expires_at == later + timedelta(seconds=1800)
    session = NumberSession.objects.get(pk=first.session_id)
    assert session.last_seen_at == later
    assert session.page_url == "https://shop.example.com/pricing"
    assert NumberSession.objects.count() == 1


def test_a_number_is_free_again_only_after_a_whole_session_lifetime_without_its_visitor(pool, now):
    (only,) = add_numbers(pool, "+14152000001")
    pool.overflow_policy = OverflowPolicy.FALLBACK
    pool.fallback_number = "+18005550100"
    pool.save()
    number_assign(pool=pool, visit=visit("visitor-a1"), now=now)

    busy = number_assign(pool=pool, visit=visit("visitor-b1"), now=now + timedelta(seconds=1799))
    free = number_assign(pool=pool, visit=visit("visitor-c1"), now=now + timedelta(seconds=1800))

    assert busy.overflow and busy.number == "+18005550100"
    assert not free.overflow and free.number == only.number


def test_an_expired_visitor_coming_back_starts_a_new_session(pool, now):
    add_numbers(pool, "+14152000001", "+14152000002")
    first = number_assign(pool=pool, visit=visit("visitor-a1"), now=now)

    back = number_assign(pool=pool, visit=visit("visitor-a1"), now=now + timedelta(hours=2))

    assert back.session_id != first.session_id
    assert back.returning is False
    # Its old number was shown most recently, so the other number is the least recently assigned.
    assert back.number != first.number


def test_new_ad_click_during_a_session_replaces_the_marketing_data(pool, now):
    add_numbers(pool, "+14152000001")
    first = number_assign(
        pool=pool,
        visit=visit("visitor-a1", page_url="https://x.example.com/?utm_source=google", marketing_data={"utm_source": "google"}),
        now=now,
    )
    number_assign(pool=pool, visit=visit("visitor-a1", page_url="https://x.example.com/about"), now=now + timedelta(minutes=1))
    session = NumberSession.objects.get(pk=first.session_id)
    assert session.marketing_data == {"utm_source": "google"}
    assert session.landing_page == "https://x.example.com/?utm_source=google"

    number_assign(
        pool=pool,
        visit=visit("visitor-a1", page_url="https://x.example.com/?fbclid=abc", referrer="https://facebook.com/", marketing_data={"fbclid": "abc"}),
        now=now + timedelta(minutes=2),
    )
    session.refresh_from_db()
    assert session.marketing_data == {"fbclid": "abc"}
    assert session.landing_page == "https://x.example.com/?fbclid=abc"
    assert session.referrer == "https://facebook.com/"


def test_toll_free_destination_gets_a_toll_free_number(pool, now):
    add_numbers(pool, "+14152000001", "+18002000001")
    got = number_assign(pool=pool, visit=visit("visitor-a1", destination="+18005550199"), now=now)
    assert got.number == "+18002000001"


def test_local_destination_prefers_its_area_code_then_its_state_then_any_local_number(pool, now):
    add_numbers(pool, "+18002000001", "+12125550100", "+17202000001", "+13032000001")
    dest = "+13035550100"  # Denver, Colorado; 720 is Colorado too, 212 is New York

    got = [number_assign(pool=pool, visit=visit(f"visitor-{i:03d}", destination=dest), now=now).number for i in range(4)]

    assert got[:3] == ["+13032000001", "+17202000001", "+12125550100"]
    # Local destination, local numbers exhausted: overflow reuses the oldest local number, never the toll-free one.
    assert got[3] != "+18002000001"


def test_a_pool_without_numbers_of_the_destination_type_gives_any_number(pool, now):
    add_numbers(pool, "+14152000001")
    got = number_assign(pool=pool, visit=visit("visitor-a1", destination="+18005550199"), now=now)
    assert got.number == "+14152000001"
    assert not got.overflow


def test_local_only_pool_never_shows_a_toll_free_number(pool, now):
    pool.number_type = PoolNumberType.LOCAL
    pool.save()
    add_numbers(pool, "+18002000001", "+14152000001")
    got = number_assign(pool=pool, visit=visit("visitor-a1", destination="+18005550199"), now=now)
    assert got.number == "+14152000001"


def test_quarantined_and_static_numbers_are_never_handed_out(pool, now, settings):
    settings.CALLTRACK_DNI_TAKEOVER_MIN_AGE = 0  # takes over a session opened the same instant
    (quarantined,) = add_numbers(pool, "+14152000001", status=NumberStatus.QUARANTINED)
    TrackingNumberFactory(number="+14152000009", kind="static", campaign=pool.campaign)
    (good,) = add_numbers(pool, "+14152000002")
    first = number_assign(pool=pool, visit=visit("visitor-a1"), now=now)
    second = number_assign(pool=pool, visit=visit("visitor-b1"), now=now)
    assert first.number == good.number
    assert second.overflow and second.number == good.number  # reuse policy: the only active number


def test_overflow_with_reuse_gives_the_oldest_number_to_the_newest_visitor_and_ends_the_old_session(pool, now, settings):
    settings.CALLTRACK_DNI_TAKEOVER_MIN_AGE = 0  # takes over a session opened the same instant
    a_number, b_number = add_numbers(pool, "+14152000001", "+14152000002")
    a = number_assign(pool=pool, visit=visit("visitor-a1"), now=now)
    b = number_assign(pool=pool, visit=visit("visitor-b1"), now=now + timedelta(seconds=1))

    c = number_assign(pool=pool, visit=visit("visitor-c1"), now=now + timedelta(seconds=2))

    assert c.overflow is True
    assert c.number == a.number  # least recently assigned
    pool.refresh_from_db()
    assert pool.overflow_count == 1
    assert NumberSession.objects.get(pk=a.session_id).expires_at == now + timedelta(seconds=2)
    assert NumberSession.objects.live(now + timedelta(seconds=3)).filter(tracking_number__number=a.number).count() == 1
    # The displaced visitor's heartbeat says its session has ended...
    assert session_heartbeat(pool=pool, visitor_id="visitor-a1", session_id=a.session_id, now=now + timedelta(seconds=3)) is None
    # ...while b keeps its number.
    assert session_heartbeat(pool=pool, visitor_id="visitor-b1", session_id=b.session_id, now=now + timedelta(seconds=3)) is not None
    assert b.number == b_number.number


def test_a_displaced_visitor_asking_again_gets_a_number_again(pool, now, settings):
    settings.CALLTRACK_DNI_TAKEOVER_MIN_AGE = 0  # takes over a session opened the same instant
    add_numbers(pool, "+14152000001")
    a = number_assign(pool=pool, visit=visit("visitor-a1"), now=now)
    number_assign(pool=pool, visit=visit("visitor-b1"), now=now + timedelta(seconds=1))  # takes a's number

    again = number_assign(pool=pool, visit=visit("visitor-a1"), now=now + timedelta(seconds=2))

    assert again.session_id != a.session_id
    assert again.overflow  # the pool is still too small: a displaces b in turn
    pool.refresh_from_db()
    assert pool.overflow_count == 2


def test_overflow_with_fallback_shows_the_fallback_number_and_counts_it(pool, now):
    pool.overflow_policy = OverflowPolicy.FALLBACK
    pool.fallback_number = "+18005550100"
    pool.save()
    (number,) = add_numbers(pool, "+14152000001")
    number_assign(pool=pool, visit=visit("visitor-a1"), now=now)

    got = number_assign(pool=pool, visit=visit("visitor-b1", destination="+14155550100", destination_text="(415) 555-0100"), now=now)
    again = number_assign(pool=pool, visit=visit("visitor-b1"), now=now + timedelta(seconds=5))

    assert got.overflow and got.number == "+18005550100" and got.formatted == "(800) 555-0100"
    session = NumberSession.objects.get(pk=got.session_id)
    assert session.tracking_number is None and session.is_overflow
    assert again.session_id == got.session_id and again.number == "+18005550100"  # kept while the session lives
    pool.refresh_from_db()
    assert pool.overflow_count == 1
    number.refresh_from_db()
    assert number.current_session.visitor_id == "visitor-a1"


def test_fallback_policy_without_a_fallback_number_leaves_the_page_its_own_number(pool, now):
    pool.overflow_policy = OverflowPolicy.FALLBACK
    pool.save()
    got = number_assign(pool=pool, visit=visit("visitor-a1"), now=now)
    assert got.number is None and got.overflow and got.formatted == ""


def test_formatted_number_follows_the_pages_writing(pool, now):
    add_numbers(pool, "+14152000001")
    got = number_assign(pool=pool, visit=visit("visitor-a1", destination="+14155550100", destination_text="415.555.0100"), now=now)
    assert got.formatted == "415.200.0001"


def test_heartbeat_extends_only_the_visitors_own_live_session(pool, now):
    add_numbers(pool, "+14152000001")
    a = number_assign(pool=pool, visit=visit("visitor-a1"), now=now)
    later = now + timedelta(minutes=25)

    assert session_heartbeat(pool=pool, visitor_id="someone-else", session_id=a.session_id, now=later) is None
    beat = session_heartbeat(pool=pool, visitor_id="visitor-a1", session_id=a.session_id, now=later)
    assert beat.expires_at == later + timedelta(seconds=1800)
    assert beat.number == a.number and beat.session_id == a.session_id
    # Extended past the original expiry: the number is still held, nobody else can take it.
    other = number_assign(pool=pool, visit=visit("visitor-b1"), now=now + timedelta(minutes=40))
    assert other.overflow
    assert session_heartbeat(pool=pool, visitor_id="visitor-a1", session_id=a.session_id, now=later + timedelta(hours=1)) is None


def test_returning_visitor_costs_one_statement_on_postgresql_five_queries_elsewhere(pool, now, django_assert_num_queries, on_postgres):
    add_numbers(pool, "+14152000001")
    number_assign(pool=pool, visit=visit("visitor-a1"), now=now)
    # PostgreSQL: one statement finds the session and extends the number's hold and the session.
    # Elsewhere: savepoint, live session, number's conditional update, session update, release savepoint.
    with django_assert_num_queries(1 if on_postgres else 5):
        again = number_assign(pool=pool, visit=visit("visitor-a1", page_url="https://x.example.com/b"), now=now + timedelta(seconds=10))
    assert again.returning and again.number == "+14152000001"
    session = NumberSession.objects.get(pk=again.session_id)
    assert (session.last_seen_at, session.page_url) == (now + timedelta(seconds=10), "https://x.example.com/b")


def test_new_visitor_costs_two_statements_on_postgresql_seven_queries_elsewhere(pool, now, django_assert_num_queries, on_postgres):
    add_numbers(pool, "+14152000001", "+14152000002")
    number_assign(pool=pool, visit=visit("visitor-a1"), now=now)
    # PostgreSQL: the one-statement look for a live session (none); then one statement that takes the visitor's
    # advisory lock, checks it still has no session, takes the number and opens the session.
    # Elsewhere: savepoint, live session (none), free number, conditional take, session insert, number
    # stamp and holder, release savepoint.
    with django_assert_num_queries(2 if on_postgres else 7):
        got = number_assign(pool=pool, visit=visit("visitor-b1", marketing_data={"utm_source": "bing"}, ip_address="203.0.113.9"), now=now)
    number = TrackingNumber.objects.get(number=got.number)
    assert number.current_session_id == got.session_id and number.last_assigned_at == now
    session = NumberSession.objects.get(pk=got.session_id)
    assert (session.marketing_data, session.ip_address, session.expires_at) == ({"utm_source": "bing"}, "203.0.113.9", got.expires_at)


@pytest.mark.parametrize("policy", [OverflowPolicy.REUSE_OLDEST, OverflowPolicy.FALLBACK])
def test_an_overflowing_new_visitor_costs_what_a_new_visitor_costs_on_postgresql(pool, now, django_assert_num_queries, on_postgres, policy):
    pool.overflow_policy, pool.fallback_number = policy, "+18005550100"
    pool.save()
    add_numbers(pool, "+14152000001", "+14152000002")
    number_assign(pool=pool, visit=visit("visitor-a1"), now=now - timedelta(minutes=10))
    number_assign(pool=pool, visit=visit("visitor-b1"), now=now)  # a1's session is old enough to be taken over, b1's is not
    # PostgreSQL: the look for a live session (none); then the one statement that takes the visitor's lock, finds no
    # free number in any tier, counts the overflow, takes over the oldest takeable number (or none) and opens the session.
    # SQLite's ORM path: its queries one by one (with "reuse", the takeover candidates first).
    with django_assert_num_queries(2 if on_postgres else 13 if policy == OverflowPolicy.REUSE_OLDEST else 9):
        got = number_assign(pool=pool, visit=visit("visitor-c1", destination="+14155550100"), now=now)
    assert got.overflow
    pool.refresh_from_db()
    assert pool.overflow_count == 1
    a1 = NumberSession.objects.get(visitor_id="visitor-a1")
    if policy == OverflowPolicy.REUSE_OLDEST:
        assert got.number == a1.tracking_number.number and a1.expires_at == now
        assert TrackingNumber.objects.get(number=got.number).current_session_id == got.session_id
    else:
        assert got.number == "+18005550100" and a1.expires_at > now
        assert NumberSession.objects.get(pk=got.session_id).tracking_number_id is None


def test_requests_within_the_refresh_interval_record_the_visit_without_moving_the_hold(pool, now):
    (number,) = add_numbers(pool, "+14152000001")
    first = number_assign(pool=pool, visit=visit("visitor-a1"), now=now)
    soon = now + timedelta(seconds=30)  # refresh interval of a 1800 s session: 60 s

    again = number_assign(pool=pool, visit=visit("visitor-a1", page_url="https://x.example.com/2"), now=soon)

    assert again.expires_at == first.expires_at == now + timedelta(seconds=1800)
    session = NumberSession.objects.get(pk=first.session_id)
    assert (session.last_seen_at, session.expires_at, session.page_url) == (soon, first.expires_at, "https://x.example.com/2")
    number.refresh_from_db()
    assert number.last_assigned_at == now  # the stamp and the expiry move together, so "free" == "expired"
    later = now + timedelta(seconds=61)
    assert number_assign(pool=pool, visit=visit("visitor-a1"), now=later).expires_at == later + timedelta(seconds=1800)
    number.refresh_from_db()
    assert number.last_assigned_at == later
