"""Which visitor a call to a pool number is credited to (numbers.selectors), per the seeds' RingPool rules."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from calltrack.numbers.dni.services import Visit, number_assign
from calltrack.numbers.models import NumberSession, OverflowPolicy
from calltrack.numbers.selectors import attribution_for_call, session_for_call
from tests.numbers.factories import NumberPoolFactory, NumberSessionFactory, TrackingNumberFactory
from tests.tracking.factories import SourceFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def now():
    return timezone.now().replace(microsecond=0)


@pytest.fixture
def pool():
    return NumberPoolFactory(source=SourceFactory(name="Website"), attribution_window=72)


@pytest.fixture
def number(pool):
    return TrackingNumberFactory(number="+14152000001", kind="pool", pool=pool, campaign=pool.campaign)


def shown(pool, number, visitor, *, started, last_seen=None, **data):
    return NumberSessionFactory(
        pool=pool, tracking_number=number, visitor_id=visitor, started_at=started, last_seen_at=last_seen or started,
        expires_at=(last_seen or started) + timedelta(minutes=30), **data,
    )


def test_a_call_goes_to_the_latest_visitor_shown_the_number(pool, number, now):
    shown(pool, number, "first", started=now - timedelta(hours=5))
    latest = shown(pool, number, "second", started=now - timedelta(hours=2))
    assert session_for_call(tracking_number=number, at=now) == latest


def test_the_visitor_keeps_the_credit_for_the_whole_attribution_window_after_last_seeing_the_number(pool, number, now):
    session = shown(pool, number, "a", started=now - timedelta(hours=80), last_seen=now - timedelta(hours=71, minutes=59))
    assert session_for_call(tracking_number=number, at=now) == session
    assert session_for_call(tracking_number=number, at=now + timedelta(minutes=2)) is None


def test_an_earlier_visitor_is_not_credited_when_the_latest_one_is_out_of_the_window(pool, number, now):
    pool.attribution_window = 1
    pool.save()
    shown(pool, number, "earlier", started=now - timedelta(hours=3), last_seen=now - timedelta(hours=3))
    shown(pool, number, "latest", started=now - timedelta(hours=2), last_seen=now - timedelta(hours=2))
    assert session_for_call(tracking_number=number, at=now) is None


def test_a_visitor_shown_the_number_after_the_call_started_is_not_credited(pool, number, now):
    before = shown(pool, number, "before", started=now - timedelta(minutes=10))
    shown(pool, number, "after", started=now + timedelta(seconds=1))
    assert session_for_call(tracking_number=number, at=now) == before


def test_a_visitor_still_on_the_page_while_calling_is_credited(pool, number, now):
    session = shown(pool, number, "on-page", started=now - timedelta(minutes=10), last_seen=now + timedelta(minutes=3))
    assert session_for_call(tracking_number=number, at=now) == session


def test_static_numbers_and_never_shown_numbers_credit_no_visitor(pool, number, now):
    static = TrackingNumberFactory(number="+14152000009", kind="static", marketing_data={"utm_source": "billboard"})
    assert session_for_call(tracking_number=static, at=now) is None
    assert session_for_call(tracking_number=number, at=now) is None


def test_a_number_removed_from_its_pool_still_credits_its_last_visitor_within_the_window(pool, number, now):
    session = shown(pool, number, "a", started=now - timedelta(hours=1))
    number.pool = None
    number.status = "quarantined"
    number.save()
    assert session_for_call(tracking_number=number, at=now) == session
    assert attribution_for_call(tracking_number=number, at=now).campaign_id == pool.campaign_id


def test_after_overflow_reuse_the_newest_visitor_gets_the_credit(pool, number, now, settings):
    settings.CALLTRACK_DNI_TAKEOVER_MIN_AGE = 0  # takes over a session opened the same instant
    pool.overflow_policy = OverflowPolicy.REUSE_OLDEST
    pool.save()
    number_assign(pool=pool, visit=Visit(visitor_id="old-visitor"), now=now - timedelta(minutes=5))
    newest = number_assign(pool=pool, visit=Visit(visitor_id="new-visitor"), now=now - timedelta(minutes=1))
    assert newest.overflow
    assert session_for_call(tracking_number=number, at=now).visitor_id == "new-visitor"


def test_visitors_shown_the_fallback_number_are_never_credited(pool, number, now):
    pool.overflow_policy = OverflowPolicy.FALLBACK
    pool.fallback_number = "+18005550100"
    pool.save()
    holder = number_assign(pool=pool, visit=Visit(visitor_id="holder-1"), now=now - timedelta(minutes=5))
    number_assign(pool=pool, visit=Visit(visitor_id="overflowed"), now=now - timedelta(minutes=1))
    assert session_for_call(tracking_number=number, at=now).pk == holder.session_id


def test_session_for_call_is_one_query(pool, number, now, django_assert_num_queries):
    shown(pool, number, "a", started=now - timedelta(hours=1))
    with django_assert_num_queries(1):  # the latest session with its pool
        session = session_for_call(tracking_number=number, at=now)
        assert session.pool.attribution_window == 72


def test_attribution_carries_the_visitors_marketing_data_landing_page_and_the_pools_source(pool, number, now):
    shown(
        pool, number, "visitor-1", started=now - timedelta(minutes=10),
        marketing_data={"utm_source": "google", "utm_campaign": "spring", "gclid": "g1"},
        landing_page="https://www.acme.example/?utm_source=google", referrer="https://www.google.com/",
    )
    got = attribution_for_call(tracking_number=number, at=now)
    assert got.session.visitor_id == "visitor-1"
    assert got.marketing_data == {"utm_source": "google", "utm_campaign": "spring", "gclid": "g1"}
    assert got.landing_page == "https://www.acme.example/?utm_source=google"
    assert got.referrer == "https://www.google.com/"
    assert got.visitor_id == "visitor-1"
    assert (got.campaign_id, got.source_id) == (pool.campaign_id, pool.source_id)


def test_outside_the_window_the_call_is_credited_to_the_pools_campaign_and_source_with_no_visitor(pool, number, now):
    shown(pool, number, "old", started=now - timedelta(days=10), marketing_data={"utm_source": "google"})
    got = attribution_for_call(tracking_number=number, at=now)
    assert got.session is None and got.marketing_data == {} and got.visitor_id == ""
    assert (got.campaign_id, got.source_id) == (pool.campaign_id, pool.source_id)


def test_static_numbers_carry_their_fixed_marketing_data_on_every_call(pool, now):
    source = SourceFactory(name="Billboards")
    static = TrackingNumberFactory(number="+14152000009", kind="static", source=source, marketing_data={"utm_source": "billboard", "utm_campaign": "i95"})
    for at in (now, now + timedelta(days=30)):
        got = attribution_for_call(tracking_number=static, at=at)
        assert got.marketing_data == {"utm_source": "billboard", "utm_campaign": "i95"}
        assert (got.campaign_id, got.source_id, got.session) == (static.campaign_id, source.pk, None)


def test_sessions_of_other_numbers_do_not_count(pool, number, now):
    other = TrackingNumberFactory(number="+14152000002", kind="pool", pool=pool, campaign=pool.campaign)
    shown(pool, other, "b", started=now - timedelta(minutes=1))
    assert session_for_call(tracking_number=number, at=now) is None
    assert NumberSession.objects.count() == 1
