"""Fixed-window request counters in the shared Django cache (Redis in production), never in process memory.

A rate is written ``N/period`` (``120/minute``, ``10/s``, ``1000/hour``, ``5000/day``); an empty value or
``0`` turns the limit off. Several app servers count together because the counters live in the cache.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from functools import lru_cache

from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured

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


def hit(*, scope: str, key: str, rate: Rate | None, now: float | None = None) -> Verdict:
    """Count one request of ``key`` in ``scope``; refuse it when the window's count passes the rate.

    Atomic across processes with a cache whose ``incr`` is atomic (Redis, Memcached, the database cache).
    """
    if rate is None:
        return Verdict(allowed=True)
    now = time.time() if now is None else now
    window = int(now // rate.period)
    cache_key = f"calltrack:rl:{scope}:{key}:{rate.period}:{window}"
    # The counter usually exists already: increment first, create it only on the window's first request
    # (one cache operation per request instead of add() + incr()). The timeout outlives the window so a
    # slow clock still counts.
    try:
        count = cache.incr(cache_key)
    except ValueError:  # the window's first request (or the counter was evicted)
        if cache.add(cache_key, 1, timeout=rate.period + 5):
            count = 1
        else:  # another request created it meanwhile
            try:
                count = cache.incr(cache_key)
            except ValueError:  # and it was evicted again: count this one alone
                cache.set(cache_key, 1, timeout=rate.period + 5)
                count = 1
    if count > rate.limit:
        return Verdict(allowed=False, retry_after=max(1, int((window + 1) * rate.period - now)))
    return Verdict(allowed=True)
