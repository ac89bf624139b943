"""Rate-limit counters: each increment atomic, on every cache calltrack supports (the database cache counts in the
database, one INSERT ... ON CONFLICT DO UPDATE ... RETURNING per hit)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from django.core.cache import caches
from django.core.management import call_command
from django.test import Client, override_settings
from django.utils.module_loading import import_string

from calltrack import ratelimit
from calltrack.models import RateCounter
from calltrack.schedules import SCHEDULES
from tests.numbers.factories import NumberPoolFactory, TrackingNumberFactory
from tests.numbers.test_dni_concurrency import run_at_once

MID_HOUR = 500_000 * 3_600 + 1_800.0
DATABASE_CACHE = {"default": {"BACKEND": "django.core.cache.backends.db.DatabaseCache", "LOCATION": "calltrack_cache"}}


@pytest.fixture
def database_cache(settings):
    """The production default (CACHE_URL unset, DEBUG off): Django's database cache, whose incr reads then writes."""
    settings.CACHES = DATABASE_CACHE
    call_command("createcachetable", verbosity=0)
    yield
    caches["default"].close()


@pytest.mark.parametrize(
    "backend, atomic",
    [
        ("django.core.cache.backends.db.DatabaseCache", False),
        ("django.core.cache.backends.filebased.FileBasedCache", False),
        ("django.core.cache.backends.dummy.DummyCache", False),
        ("django.core.cache.backends.locmem.LocMemCache", True),
        ("django.core.cache.backends.redis.RedisCache", True),
        ("django.core.cache.backends.memcached.PyMemcacheCache", True),
    ],
)
def test_only_caches_with_an_atomic_incr_keep_the_counters(backend, atomic):
    assert ratelimit.backend_counts_atomically(import_string(backend)) is atomic


def test_the_tests_development_cache_keeps_the_counters():
    assert ratelimit.cache_counts_atomically()  # LocMemCache (DEBUG=true): the hot paths' statement budgets hold


@pytest.mark.django_db
def test_with_the_database_cache_the_counters_live_in_their_own_table(database_cache):
    rate = ratelimit.parse_rate("3/minute")
    verdicts = [ratelimit.hit(scope="dni:ip", key="203.0.113.9", rate=rate, now=1_000_000.0).allowed for _ in range(4)]
    next_window = ratelimit.hit(scope="dni:ip", key="203.0.113.9", rate=rate, now=1_000_020.0)

    assert verdicts == [True, True, True, False]
    assert next_window.allowed  # 1_000_020 is the next minute: the row starts again at 1
    counter = RateCounter.objects.get()
    assert (counter.key, counter.hits, counter.window_end) == ("dni:ip:203.0.113.9:60", 1, 1_000_080)
    late = ratelimit.hit(scope="dni:ip", key="203.0.113.9", rate=rate, now=1_000_010.0)  # a server whose clock is behind
    assert late.allowed and RateCounter.objects.get().hits == 2  # counted in the current window, not a reset


@pytest.mark.django_db
def test_a_long_key_is_counted_under_its_digest(database_cache):
    rate = ratelimit.parse_rate("1/hour")
    long_key = "v" * 300
    assert [ratelimit.hit(scope="dni:visitor", key=long_key, rate=rate, now=7_200.0).allowed for _ in range(2)] == [True, False]
    assert ratelimit.hit(scope="dni:visitor", key=long_key[:-1] + "w", rate=rate, now=7_200.0).allowed
    assert all(len(key) <= 250 and key.startswith("sha256:") for key in RateCounter.objects.values_list("key", flat=True))


@pytest.mark.django_db
def test_the_purge_task_deletes_the_counters_of_ended_windows(database_cache):
    minute, hour = ratelimit.parse_rate("5/minute"), ratelimit.parse_rate("5/hour")
    ratelimit.hit(scope="a", key="x", rate=minute, now=3_600.0)  # window ends at 3_660
    ratelimit.hit(scope="b", key="x", rate=hour, now=3_600.0)  # window ends at 7_200

    assert ratelimit.rate_counters_purge(now=3_700.0) == 1
    assert list(RateCounter.objects.values_list("key", flat=True)) == ["b:x:3600"]
    assert "calltrack.tasks.rate_counters_purge_task" in {path for _, path, _, _ in SCHEDULES}


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_forty_requests_at_once_against_the_database_cache_pass_exactly_the_limit():
    rate = ratelimit.parse_rate("10/hour")

    with override_settings(CACHES=DATABASE_CACHE):
        call_command("createcachetable", verbosity=0)
        try:
            verdicts = run_at_once(40, lambda i: ratelimit.hit(scope="dni:ip", key="198.51.100.7", rate=rate, now=MID_HOUR).allowed)
        finally:
            caches["default"].close()

    assert verdicts.count(True) == 10
    assert RateCounter.objects.get().hits == 40


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_forty_dni_requests_at_once_from_one_client_get_exactly_the_ip_limit(settings, monkeypatch):
    monkeypatch.setattr(ratelimit, "time", SimpleNamespace(time=lambda: MID_HOUR))  # no window ends meanwhile
    settings.CALLTRACK_DNI_RATE_LIMIT_IP = "10/hour"
    settings.CALLTRACK_DNI_RATE_LIMIT_VISITOR = ""
    settings.CALLTRACK_DNI_NEW_SESSIONS_PER_IP = ""
    pool = NumberPoolFactory(key="main", fallback_number="+18005550100")
    TrackingNumberFactory(number="+14152000001", kind="pool", pool=pool, campaign=pool.campaign)
    settings.CACHES = DATABASE_CACHE
    call_command("createcachetable", verbosity=0)

    def assign(i: int) -> int:
        body = json.dumps({"pool": "main", "visitor_id": f"visitor-{i:04d}"})
        return Client().post("/dni/v1/assign", data=body, content_type="text/plain", REMOTE_ADDR="198.51.100.7").status_code

    try:
        answers = run_at_once(40, assign)
    finally:
        caches["default"].close()

    assert sorted(answers) == [200] * 10 + [429] * 30
