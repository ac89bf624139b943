"""Fixed-window request counters shared by every worker and server, each increment atomic.

A rate is written ``N/period`` (``120/minute``, ``10/s``, ``1000/hour``, ``5000/day``); an empty value or
``0`` turns the limit off. Several app servers count together because the counters live in the shared cache when
its ``incr`` is atomic (Redis, Memcached; process memory in development), else in the database (the table
``calltrack_ratecounter``, one ``INSERT ... ON CONFLICT DO UPDATE ... RETURNING`` per hit): Django's database cache,
the production default, increments by a read then a write, which concurrent requests pass through together (40
requests at once from one client against a limit of 10 let 13 through on 3 gunicorn workers).
"""

from __future__ import annotations

import hashlib
import re
import time
from dataclasses import dataclass
from functools import lru_cache

from django.core.cache import cache, caches
from django.core.exceptions import ImproperlyConfigured

from calltrack.fastdb import fixed_cursor

_PERIODS = {
    "s": 1, "sec": 1, "second": 1,
    "m": 60, "min": 60, "minute": 60,
    "h": 3600, "hour": 3600,
    "d": 86400, "day": 86400,
}
_RATE = re.compile(r"^\s*(\d+)\s*/\s*([a-z]+?)s?\s*$")


@dataclass(frozen=True)
class Rate:
    limit: int
    period: int
    text: str

    @property
    def period_name(self) -> str:
        return {1: "second", 60: "minute", 3600: "hour", 86400: "day"}[self.period]


@lru_cache(maxsize=32)
def parse_rate(value: str, *, setting: str = "rate") -> Rate | None:
    """``'120/minute'`` -> Rate(120, 60); ``''`` or ``'0'`` -> None (no limit). ImproperlyConfigured says why."""
    text = (value or "").strip().lower()
    if text in ("", "0", "off", "none"):
        return None
    match = _RATE.match(text)
    if not match or match.group(2) not in _PERIODS:
        raise ImproperlyConfigured(
            f"{setting}={value!r} is not a rate like '120/minute' (N/second, N/minute, N/hour or N/day; empty for no limit)."
        )
    limit = int(match.group(1))
    if limit == 0:
        return None
    return Rate(limit=limit, period=_PERIODS[match.group(2)], text=text)


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    retry_after: int = 0


# Cache backends whose ``incr`` is one atomic operation of the store (or, for process memory, under a lock).
ATOMIC_INCR_BACKENDS = frozenset({
    "django.core.cache.backends.redis.RedisCache",
    "django.core.cache.backends.memcached.PyMemcacheCache",
    "django.core.cache.backends.memcached.PyLibMCCache",
    "django.core.cache.backends.locmem.LocMemCache",
    "django_redis.cache.RedisCache",
})


def cache_counts_atomically() -> bool:
    """Whether the default cache's ``incr`` is atomic (else :func:`hit` counts in the database)."""
    return backend_counts_atomically(type(caches["default"]))


@lru_cache(maxsize=8)
def backend_counts_atomically(backend: type) -> bool:
    """Whether ``backend`` (a cache class, or a subclass of one) is in ATOMIC_INCR_BACKENDS."""
    return any(f"{klass.__module__}.{klass.__qualname__}" in ATOMIC_INCR_BACKENDS for klass in backend.__mro__)


def hit(*, scope: str, key: str, rate: Rate | None, now: float | None = None) -> Verdict:
    """Count one request of ``key`` in ``scope``; refuse it when the window's count passes the rate.

    Atomic across processes and servers: each request gets its own count, so exactly ``rate.limit`` requests of a
    window pass however many arrive at once (in the cache with an atomic ``incr``, else in the database).
    """
    if rate is None:
        return Verdict(allowed=True)
    now = time.time() if now is None else now
    window = int(now // rate.period)
    if cache_counts_atomically():
        count = _cache_count(f"calltrack:rl:{scope}:{key}:{rate.period}:{window}", rate)
    else:
        count = _database_count(f"{scope}:{key}:{rate.period}", (window + 1) * rate.period)
    if count > rate.limit:
        return Verdict(allowed=False, retry_after=max(1, int((window + 1) * rate.period - now)))
    return Verdict(allowed=True)


def _cache_count(cache_key: str, rate: Rate) -> int:
    # The counter usually exists already: increment first, create it only on the window's first request
    # (one cache operation per request instead of add() + incr()). The timeout outlives the window so a
    # slow clock still counts.
    try:
        return cache.incr(cache_key)
    except ValueError:  # the window's first request (or the counter was evicted)
        if cache.add(cache_key, 1, timeout=rate.period + 5):
            return 1
        try:  # another request created it meanwhile
            return cache.incr(cache_key)
        except ValueError:  # and it was evicted again: count this one alone
            cache.set(cache_key, 1, timeout=rate.period + 5)
            return 1


# One statement, atomic on PostgreSQL (the conflicting row is locked, then updated) and on SQLite (one writer): a
# row of an ended window starts again at 1; a request of an earlier window (a server's clock behind) counts in the
# current one.
_COUNT_SQL = (
    "INSERT INTO calltrack_ratecounter (key, window_end, hits) VALUES (%s, %s, 1) "
    "ON CONFLICT (key) DO UPDATE SET "
    "hits = CASE WHEN calltrack_ratecounter.window_end < EXCLUDED.window_end THEN 1 ELSE calltrack_ratecounter.hits + 1 END, "
    "window_end = CASE WHEN calltrack_ratecounter.window_end < EXCLUDED.window_end "
    "THEN EXCLUDED.window_end ELSE calltrack_ratecounter.window_end END "
    "RETURNING hits"
)
_KEY_MAX = 250  # RateCounter.key


def _database_count(key: str, window_end: int) -> int:
    if len(key) > _KEY_MAX:  # a long visitor id: its digest, which no other key can take
        key = "sha256:" + hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()
    with fixed_cursor() as cursor:
        cursor.execute(_COUNT_SQL, [key, window_end])
        return cursor.fetchone()[0]


def rate_counters_purge(*, now: float | None = None) -> int:
    """Delete the database counters whose window has ended (a later hit would start them again at 1); returns how
    many. Run every few minutes by the ``rate_counters_purge`` task, so the table holds about one window of clients."""
    from calltrack.models import RateCounter

    now = time.time() if now is None else now
    deleted, _ = RateCounter.objects.filter(window_end__lte=int(now)).delete()
    return deleted
