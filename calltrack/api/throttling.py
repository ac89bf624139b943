"""The REST API's throttles: DRF's anonymous and per-user rates, counted like every other limit of calltrack.

DRF's own throttles take the client from X-Forwarded-For when NUM_PROXIES is unset, so a script that sends a new
header with each request is never throttled; and they keep each client's request history in the cache by a read
then a write, which concurrent requests pass through together. These count with
:func:`calltrack.ratelimit.hit` (fixed windows, each increment atomic: in the cache when its ``incr`` is,
else in the database) and take the client from :func:`calltrack.middleware.client_key` (REMOTE_ADDR, or our own
proxies' X-Forwarded-For entry with CALLTRACK_PROXY_HOPS; an IPv6 client by its /64), as the DNI limits and the
login lockout do.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from rest_framework import throttling
from rest_framework.request import Request

from calltrack import ratelimit
from calltrack.middleware import client_key


class _CountedThrottle(throttling.SimpleRateThrottle):
    """A DRF rate throttle whose count is one :func:`ratelimit.hit` (the key from ``get_cache_key`` as usual)."""

    limit_rate: ratelimit.Rate | None = None
    retry_after: int | None = None

    def parse_rate(self, rate: str | None) -> tuple[int | None, int | None]:
        self.limit_rate = _rate(rate, scope=self.scope)
        if self.limit_rate is None:
            return None, None
        return self.limit_rate.limit, self.limit_rate.period

    def get_ident(self, request: Request) -> str:
        return client_key(request)

    def allow_request(self, request: Request, view: Any) -> bool:
        if self.limit_rate is None:
            return True
        key = self.get_cache_key(request, view)
        if key is None:
            return True
        verdict = ratelimit.hit(scope="api", key=key, rate=self.limit_rate)
        self.retry_after = verdict.retry_after or None
        return verdict.allowed

    def wait(self) -> float | None:
        return self.retry_after


def _rate(text: str | None, *, scope: str | None) -> ratelimit.Rate | None:
    """DRF's rate text (``60/min``, ``1200/minute``, ``10/s``...) as a :class:`ratelimit.Rate`; None for no limit."""
    if not text:
        return None
    try:
        return ratelimit.parse_rate(text, setting=f"the API throttle rate {scope!r}")
    except ImproperlyConfigured:
        # What DRF accepts beyond our spellings ("10/hr", "5/days"): it reads the period's first letter.
        try:
            limit, period = throttling.SimpleRateThrottle.parse_rate(None, text)  # type: ignore[arg-type]
        except (ValueError, KeyError, IndexError):
            raise ImproperlyConfigured(f"The API throttle rate {scope!r} is {text!r}, not a rate like '60/minute'.") from None
        return ratelimit.Rate(limit=limit, period=period, text=text) if limit else None


def throttle_rates_check() -> list[str]:
    """What is wrong with the API's throttle rates (for the system check): one sentence each."""
    rates = {**settings.REST_FRAMEWORK.get("DEFAULT_THROTTLE_RATES", {}), "schema": settings.CALLTRACK_API_THROTTLE_SCHEMA}
    problems = []
    for scope, text in rates.items():
        try:
            _rate(text, scope=scope)
        except ImproperlyConfigured as exc:
            problems.append(str(exc))
    return problems


class AnonRateThrottle(_CountedThrottle, throttling.AnonRateThrottle):
    """Requests without credentials, per client (CALLTRACK_API_THROTTLE_ANON)."""


class UserRateThrottle(_CountedThrottle, throttling.UserRateThrottle):
    """Requests with credentials, per user (CALLTRACK_API_THROTTLE_USER); without, per client."""


class SchemaRateThrottle(_CountedThrottle):
    """/api/schema/ (0.3-0.5 s of CPU each): per user, or per client without credentials, at
    CALLTRACK_API_THROTTLE_SCHEMA whatever the other API rates say (throttling off elsewhere keeps this one)."""

    scope = "schema"

    def get_rate(self) -> str | None:
        return settings.CALLTRACK_API_THROTTLE_SCHEMA or None

    def get_cache_key(self, request: Request, view: Any) -> str:
        user = getattr(request, "user", None)
        ident = f"user:{user.pk}" if user is not None and user.is_authenticated else self.get_ident(request)
        return self.cache_format % {"scope": self.scope, "ident": ident}
