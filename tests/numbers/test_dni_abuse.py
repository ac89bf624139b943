"""DNI abuse: a script must not take a live visitor's number (and the credit for its call)."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from calltrack.numbers.dni.services import Visit, number_assign, session_heartbeat
from calltrack.numbers.models import NumberSession, OverflowPolicy
from calltrack.numbers.selectors import pool_overflow_hours, pool_overflow_spikes
from tests.numbers.factories import NumberPoolFactory, NumberSessionFactory, TrackingNumberFactory

pytestmark = pytest.mark.django_db
ASSIGN = "/dni/v1/assign"
ORIGIN = "https://www.acme.example"


@pytest.fixture
def now():
    return timezone.now().replace(microsecond=0)


@pytest.fixture
def pool():
    pool = NumberPoolFactory(
        key="main", session_lifetime=1800, overflow_policy=OverflowPolicy.REUSE_OLDEST, fallback_number="+18005550100",
        allowed_origins=ORIGIN,
    )
    TrackingNumberFactory(number="+14152000001", kind="pool", pool=pool, campaign=pool.campaign)
    return pool


def post(client, body, **headers):
    return client.post(ASSIGN, data=json.dumps(body), content_type="text/plain", **headers)


def test_a_session_younger_than_the_minimum_age_is_never_taken_over(pool, now, settings):
    settings.CALLTRACK_DNI_TAKEOVER_MIN_AGE = 300
    live = number_assign(pool=pool, visit=Visit(visitor_id="visitor-live"), now=now)

    bot = number_assign(pool=pool, visit=Visit(visitor_id="visitor-bot1"), now=now + timedelta(seconds=299))

    assert bot.number == "+18005550100" and bot.overflow  # the fallback number, counted as an overflow
    pool.refresh_from_db()
    assert pool.overflow_count == 1
    kept = session_heartbeat(pool=pool, visitor_id="visitor-live", session_id=live.session_id, now=now + timedelta(seconds=300))
    assert kept is not None and kept.number == live.number == "+14152000001"


def test_a_session_past_the_minimum_age_is_taken_over_by_the_reuse_policy(pool, now, settings):
    settings.CALLTRACK_DNI_TAKEOVER_MIN_AGE = 300
    old = number_assign(pool=pool, visit=Visit(visitor_id="visitor-old"), now=now)

    newcomer = number_assign(pool=pool, visit=Visit(visitor_id="visitor-new"), now=now + timedelta(seconds=301))

    assert newcomer.number == old.number and newcomer.overflow
    assert NumberSession.objects.get(pk=old.session_id).expires_at == now + timedelta(seconds=301)


def test_a_request_without_origin_gets_the_fallback_number_and_opens_no_session(client, pool):
    response = post(client, {"pool": "main", "visitor_id": "visitor-script"})

    assert response.status_code == 200
    data = response.json()
    assert data["number"] == "+18005550100" and data["session_id"] is None and data["overflow"] is False
    assert not NumberSession.objects.exists()
    pool.refresh_from_db()
    assert pool.overflow_count == 0


def test_one_ip_opens_at_most_the_configured_new_sessions_per_pool(client, pool, settings):
    settings.CALLTRACK_DNI_NEW_SESSIONS_PER_IP = "3/hour"
    answers = [post(client, {"pool": "main", "visitor_id": f"visitor-{i:04d}"}, HTTP_ORIGIN=ORIGIN).json() for i in range(6)]

    assert [a["session_id"] is not None for a in answers] == [True, True, True, False, False, False]
    assert answers[-1]["number"] == "+18005550100"
    assert NumberSession.objects.count() == 3
    # A returning visitor's page views are not new sessions: they do not use up the limit, nor are they refused.
    again = post(client, {"pool": "main", "visitor_id": "visitor-0000"}, HTTP_ORIGIN=ORIGIN).json()
    assert again["session_id"] == answers[0]["session_id"]


def test_the_new_session_limit_counts_each_pool_and_each_ip_apart(client, pool, settings):
    settings.CALLTRACK_DNI_NEW_SESSIONS_PER_IP = "1/hour"
    settings.CALLTRACK_PROXY_HOPS = 1
    other = NumberPoolFactory(key="other", allowed_origins=ORIGIN)
    TrackingNumberFactory(number="+14152000002", kind="pool", pool=other, campaign=other.campaign)

    first = post(client, {"pool": "main", "visitor_id": "visitor-aaaa"}, HTTP_ORIGIN=ORIGIN, HTTP_X_FORWARDED_FOR="198.51.100.1")
    other_pool = post(client, {"pool": "other", "visitor_id": "visitor-bbbb"}, HTTP_ORIGIN=ORIGIN, HTTP_X_FORWARDED_FOR="198.51.100.1")
    other_ip = post(client, {"pool": "main", "visitor_id": "visitor-cccc"}, HTTP_ORIGIN=ORIGIN, HTTP_X_FORWARDED_FOR="198.51.100.2")
    refused = post(client, {"pool": "main", "visitor_id": "visitor-dddd"}, HTTP_ORIGIN=ORIGIN, HTTP_X_FORWARDED_FOR="198.51.100.1")

    assert first.json()["session_id"] and other_pool.json()["session_id"] and other_ip.json()["session_id"]
    assert refused.json()["session_id"] is None


def test_the_addresses_of_one_ipv6_64_open_the_new_sessions_of_one_client(client, pool, settings):
    settings.CALLTRACK_DNI_NEW_SESSIONS_PER_IP = "3/hour"
    answers = [
        post(client, {"pool": "main", "visitor_id": f"visitor-{i:04d}"}, HTTP_ORIGIN=ORIGIN, REMOTE_ADDR=f"2001:db8:7:8::{i + 1:x}").json()
        for i in range(6)
    ]
    other_network = post(client, {"pool": "main", "visitor_id": "visitor-9999"}, HTTP_ORIGIN=ORIGIN, REMOTE_ADDR="2001:db8:7:9::1").json()

    assert [a["session_id"] is not None for a in answers] == [True, True, True, False, False, False]
    assert other_network["session_id"] is not None
    # The session keeps the visitor's own address; only the limit counts the network.
    assert NumberSession.objects.get(pk=answers[0]["session_id"]).ip_address == "2001:db8:7:8::1"


def test_the_request_rate_limit_counts_an_ipv6_64_as_one_client_and_ipv4_per_address(client, pool, settings):
    settings.CALLTRACK_DNI_RATE_LIMIT_IP = "2/day"
    settings.CALLTRACK_DNI_NEW_SESSIONS_PER_IP = ""
    ipv6 = [post(client, {"pool": "main", "visitor_id": f"visitor-6{i:03d}"}, REMOTE_ADDR=f"2001:db8:7:8:{i:x}::1").status_code for i in range(3)]
    ipv4 = [post(client, {"pool": "main", "visitor_id": f"visitor-4{i:03d}"}, REMOTE_ADDR=f"198.51.100.{i}").status_code for i in range(3)]

    assert ipv6 == [200, 200, 429]
    assert ipv4 == [200, 200, 200]


def test_overflow_hours_and_spikes_are_read_from_the_overflow_sessions(pool, now, settings):
    settings.CALLTRACK_DNI_OVERFLOW_SPIKE = 3
    hour = now.replace(minute=5, second=0) - timedelta(hours=2)
    for i in range(4):
        NumberSessionFactory(pool=pool, is_overflow=True, started_at=hour + timedelta(minutes=i), expires_at=hour + timedelta(minutes=30))
    NumberSessionFactory(pool=pool, is_overflow=True, started_at=hour + timedelta(hours=1), expires_at=hour + timedelta(hours=2))
    NumberSessionFactory(pool=pool, is_overflow=False, started_at=hour, expires_at=hour + timedelta(minutes=30))

    hours = pool_overflow_hours(pool_ids=[pool.pk], since=now - timedelta(hours=24), until=now)
    spikes = pool_overflow_spikes(now=now)

    assert [(h.hour, h.overflows) for h in hours] == [(hour.replace(minute=0), 4), (hour.replace(minute=0) + timedelta(hours=1), 1)]
    assert [(s.pool_key, s.hour, s.overflows) for s in spikes] == [("main", hour.replace(minute=0), 4)]


def test_the_pool_admin_page_shows_overflow_spikes(admin_client, pool, now, settings):
    settings.CALLTRACK_DNI_OVERFLOW_SPIKE = 2
    for i in range(3):
        NumberSessionFactory(pool=pool, is_overflow=True, started_at=now - timedelta(minutes=i), expires_at=now + timedelta(minutes=30))

    page = admin_client.get(f"/admin/numbers/numberpool/{pool.pk}/change/").content.decode()

    assert "Overflows per hour" in page
    assert "spike" in page
