"""Login lock-outs, API throttling and the shared cache (Redis on this machine: database 1) they count in."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from django.core.cache import cache, caches
from rest_framework.authtoken.models import Token
from rest_framework.throttling import SimpleRateThrottle

from calltrack import ratelimit
from tests.conftest import REDIS_TEST_URL
from tests.tracking.factories import UserFactory

ROOT = Path(__file__).resolve().parents[2]
MID_DAY = 20_833 * 86_400 + 43_200.0
REDIS_URL = REDIS_TEST_URL  # the redis_db fixture (tests/conftest.py) empties it around each test


@pytest.fixture
def fast_hashing(settings):
    """Each wrong password costs a full PBKDF2 otherwise (seconds on a busy machine); the lock-out is what is tested."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _mid_day(monkeypatch):
    """The throttles count in fixed windows (calltrack.ratelimit): here they see one instant, noon of a day, so a
    test's requests never straddle a window's end."""
    monkeypatch.setattr(ratelimit, "time", SimpleNamespace(time=lambda: MID_DAY))


@pytest.fixture(autouse=True)
def _empty_cache():
    cache.clear()
    yield
    cache.clear()


@pytest.mark.django_db
def test_repeated_wrong_admin_passwords_lock_the_login_out_even_with_the_right_one(client, fast_hashing):
    UserFactory(username="boss", is_staff=True, is_superuser=True, password="the-right-password-42")
    answers = [client.post("/admin/login/?next=/admin/", {"username": "boss", "password": "guess"}).status_code for _ in range(5)]
    assert answers == [200, 200, 200, 200, 429]  # the form again with an error, then locked out at AXES_FAILURE_LIMIT
    locked = client.post("/admin/login/?next=/admin/", {"username": "boss", "password": "the-right-password-42"})
    assert locked.status_code == 429
    assert client.get("/admin/").status_code == 302  # still not logged in


@pytest.mark.django_db
def test_the_right_password_before_the_limit_logs_in(client, fast_hashing):
    UserFactory(username="boss", is_staff=True, is_superuser=True, password="the-right-password-42")
    for _ in range(3):
        client.post("/admin/login/?next=/admin/", {"username": "boss", "password": "guess"})
    response = client.post("/admin/login/?next=/admin/", {"username": "boss", "password": "the-right-password-42"})
    assert response.status_code == 302 and client.get("/admin/").status_code == 200


def _login(client, password, address):
    return client.post("/admin/login/?next=/admin/", {"username": "boss", "password": password}, REMOTE_ADDR=address).status_code


@pytest.mark.django_db
def test_wrong_passwords_from_many_addresses_of_one_ipv6_64_lock_the_login_out(client, fast_hashing):
    UserFactory(username="boss", is_staff=True, is_superuser=True, password="the-right-password-42")
    answers = [_login(client, "guess", f"2001:db8:1:2::{i:x}") for i in range(1, 13)]

    assert answers[:4] == [200] * 4 and set(answers[4:]) == {429}  # the /64 is one client: locked at the 5th
    assert _login(client, "the-right-password-42", "2001:db8:1:2:ffff::1") == 429
    assert client.get("/admin/").status_code == 302
    # Another /64 is another client (the username's failures across addresses stay below their own limit).
    assert _login(client, "the-right-password-42", "2001:db8:1:3::1") == 302


@pytest.mark.django_db
def test_with_a_128_bit_prefix_each_ipv6_address_counts_alone(client, fast_hashing, settings):
    settings.CALLTRACK_IPV6_PREFIX = 128
    UserFactory(username="boss", is_staff=True, is_superuser=True, password="the-right-password-42")
    assert [_login(client, "guess", f"2001:db8:1:2::{i:x}") for i in range(1, 5)] == [200] * 4

    assert _login(client, "the-right-password-42", "2001:db8:1:2::99") == 302


@pytest.mark.django_db
def test_rotating_addresses_stops_at_the_per_username_limit(client, fast_hashing, settings):
    settings.CALLTRACK_LOGIN_USERNAME_FAILURE_LIMIT = 8
    UserFactory(username="boss", is_staff=True, is_superuser=True, password="the-right-password-42")
    answers = [_login(client, "guess", f"198.51.100.{i}") for i in range(1, 11)]

    assert answers == [200] * 7 + [429] * 3  # 4 or fewer per address, but 8 for the username in all
    assert _login(client, "the-right-password-42", "203.0.113.50") == 429  # locked out everywhere for the cool-off
    assert client.get("/admin/").status_code == 302


@pytest.mark.django_db
def test_a_successful_login_resets_its_own_address_not_the_usernames_failures_elsewhere(client, fast_hashing, settings):
    settings.CALLTRACK_LOGIN_USERNAME_FAILURE_LIMIT = 6
    UserFactory(username="boss", is_staff=True, is_superuser=True, password="the-right-password-42")
    for i in range(1, 5):
        _login(client, "guess", f"198.51.100.{i}")
    assert _login(client, "the-right-password-42", "203.0.113.50") == 302
    client.logout()

    assert [_login(client, "guess", f"198.51.100.{i}") for i in range(5, 8)] == [200, 429, 429]


@pytest.mark.django_db
def test_the_api_throttles_a_user_past_its_rate(client, monkeypatch):
    monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", {"anon": "2/day", "user": "3/day"})
    token = Token.objects.create(user=UserFactory(is_staff=True, is_superuser=True)).key
    answers = [client.get("/api/v1/sources/", HTTP_AUTHORIZATION=f"Token {token}").status_code for _ in range(4)]
    assert answers == [200, 200, 200, 429]


@pytest.mark.django_db
def test_rotating_x_forwarded_for_does_not_escape_the_anonymous_throttle(client, monkeypatch):
    monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", {"anon": "3/day", "user": None})
    answers = [client.get("/api/schema/", HTTP_X_FORWARDED_FOR=f"203.0.113.{i}").status_code for i in range(5)]

    assert answers == [200, 200, 200, 429, 429]  # no proxy of ours: the header is the client's, not trusted


@pytest.mark.django_db
def test_behind_our_proxy_the_anonymous_throttle_counts_the_address_it_wrote(client, monkeypatch, settings):
    settings.CALLTRACK_PROXY_HOPS = 1
    monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", {"anon": "2/day", "user": None})
    forged = [client.get("/api/schema/", HTTP_X_FORWARDED_FOR=f"10.0.0.{i}, 198.51.100.7").status_code for i in range(3)]
    same_64 = [client.get("/api/schema/", HTTP_X_FORWARDED_FOR=f"2001:db8:5:6::{i + 1:x}").status_code for i in range(3)]
    other = client.get("/api/schema/", HTTP_X_FORWARDED_FOR="198.51.100.8")

    assert forged == [200, 200, 429]  # the entries left of our proxy's are the client's own
    assert same_64 == [200, 200, 429]  # an IPv6 /64 is one client
    assert other.status_code == 200
    refused = client.get("/api/schema/", HTTP_X_FORWARDED_FOR="198.51.100.7")
    assert refused.status_code == 429 and refused["Retry-After"] == "43200"  # the day's window ends at midnight


@pytest.mark.django_db
def test_the_schema_keeps_its_own_throttle_when_the_api_rates_are_off(client, settings):
    settings.CALLTRACK_API_THROTTLE_SCHEMA = "2/day"
    anonymous = [client.get("/api/schema/", REMOTE_ADDR="198.51.100.7").status_code for _ in range(3)]
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    user = [client.get("/api/schema/", REMOTE_ADDR="198.51.100.7").status_code for _ in range(3)]

    assert anonymous == [200, 200, 429]
    assert user == [200, 200, 429]  # a user counts apart from its address
    assert client.get("/api/v1/sources/").status_code == 200  # the other endpoints: no rate set, no throttle


def test_rate_limits_count_atomically_in_redis(settings, redis_db):
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
    rate = ratelimit.parse_rate("3/minute")
    try:
        verdicts = [ratelimit.hit(scope="dni:test", key="203.0.113.9", rate=rate, now=1_000_000.0).allowed for _ in range(4)]
        assert verdicts == [True, True, True, False]
        assert any(b"calltrack:rl:dni:test:203.0.113.9" in key for key in redis_db.keys("*"))
    finally:
        caches["default"].close()


def _manage_shell(code: str, **env: str) -> str:
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("CACHE_URL", "Q_"))}
    environment.update(DJANGO_SETTINGS_MODULE="calltrack.settings", PYTHONPATH=str(ROOT), LOG_LEVEL="ERROR", **env)
    done = subprocess.run(
        [sys.executable, "manage.py", "shell", "--no-imports", "-c", code], cwd=ROOT, env=environment, capture_output=True, text=True,
        timeout=120, check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_cache_url_redis_works_out_of_the_box_for_the_dni_limits(redis_db):
    out = _manage_shell(
        "from calltrack import ratelimit; from django.core.cache import cache; "
        "from django.core.cache import caches; r = ratelimit.parse_rate('2/minute'); print(type(caches['default']).__name__, "
        "[ratelimit.hit(scope='dni:ip', key='x', rate=r, now=5e6).allowed for _ in range(3)])",
        CACHE_URL=REDIS_URL,
    )
    assert out.strip().splitlines()[-1] == "RedisCache [True, True, False]"


def test_q_redis_url_runs_the_task_broker_on_redis(redis_db):
    out = _manage_shell(
        "from django_q.brokers import get_broker; b = get_broker(); b.enqueue('task-payload'); "
        "print(type(b).__name__, b.queue_size()); [b.acknowledge(t[0]) for t in b.dequeue() or []]; b.delete_queue()",
        Q_REDIS_URL=REDIS_URL,
    )
    assert out.strip().splitlines()[-1].split() == ["Redis", "1"]
