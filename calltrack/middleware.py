"""Request middleware of the project."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.urls import Resolver404, get_urlconf, resolve


class ProxyHopsMiddleware:
    """Behind CALLTRACK_PROXY_HOPS=N proxies that each *append* to X-Forwarded-Host / X-Forwarded-Proto, keep only
    the N-th entry from the right: the one our outermost proxy wrote (entries further left came from the client).

    Django then reads the header as usual, and only where the settings say so (USE_X_FORWARDED_HOST,
    SECURE_PROXY_SSL); the host is still checked against ALLOWED_HOSTS. Without CALLTRACK_PROXY_HOPS a list is left
    as it is, and Django refuses it as an invalid host (400). First in MIDDLEWARE, before anything reads the host.
    """

    HEADERS = ("HTTP_X_FORWARDED_HOST", "HTTP_X_FORWARDED_PROTO")

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        hops = settings.CALLTRACK_PROXY_HOPS
        if hops:
            for name in self.HEADERS:
                value = request.META.get(name)
                if value and "," in value:
                    entries = [part.strip() for part in value.split(",")]
                    # Fewer entries than our proxies: the header did not come through them all; trust none of it.
                    request.META[name] = entries[-hops] if len(entries) >= hops else "invalid.invalid"
        return self.get_response(request)


def client_ip(request: HttpRequest) -> str:
    """The caller's address: REMOTE_ADDR, or the X-Forwarded-For entry set by our own proxies.

    CALLTRACK_PROXY_HOPS says how many reverse proxies we run in front of the app; entries further
    left were written by the client and are not trusted.
    """
    hops = settings.CALLTRACK_PROXY_HOPS
    if hops:
        forwarded = [part.strip() for part in request.headers.get("X-Forwarded-For", "").split(",") if part.strip()]
        if len(forwarded) >= hops:
            return forwarded[-hops]
    return request.META.get("REMOTE_ADDR", "") or "unknown"


def client_key(request: HttpRequest) -> str:
    """The client as every limit counts it (DNI rate limits and new sessions, API throttles, the login lockout):
    :func:`client_ip`, an IPv6 address grouped into its network of CALLTRACK_IPV6_PREFIX bits (64: one subscriber's
    /64, which anyone holding it can fill with addresses at will). IPv4 stays per address."""
    return address_group(client_ip(request), settings.CALLTRACK_IPV6_PREFIX)


@lru_cache(maxsize=4096)
def address_group(address: str, ipv6_prefix: int) -> str:
    """``address`` as limits count it: an IPv6 address as the first address of its ``/ipv6_prefix`` network
    (``2001:db8:1:2:a:b:c:d`` -> ``2001:db8:1:2::`` with 64), an IPv4-mapped IPv6 address as its IPv4 address,
    anything else as it is (an IPv4 address, or what is not an address at all)."""
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.IPv6Network((parsed, ipv6_prefix), strict=False).network_address)
    return str(parsed)


def axes_client_ip(request: HttpRequest) -> str | None:
    """django-axes' client address (AXES_CLIENT_IP_CALLABLE): :func:`client_key`, the rule every limit follows
    (an IPv6 client is its /64's first address, so the lockout counts the network as one client); None when that
    is not an IP address (PostgreSQL's inet column would refuse it, and a forged header must not fail the login)."""
    key = client_key(request)
    try:
        return str(ipaddress.ip_address(key))
    except ValueError:
        return None


class HotPathsMiddleware:
    """The Twilio webhooks and the DNI tag's API (CALLTRACK_LEAN_PATHS) skip the rest of the middleware stack.

    Those URLs serve Twilio and landing pages, not people logged in to the admin: no session, user, CSRF token,
    messages, frame options or login lockout applies to them (their views are ``csrf_exempt`` and check Twilio's
    signature or the pool's origins themselves). After ProxyHopsMiddleware and SecurityMiddleware, which still apply
    (hosts, HTTPS redirect, security headers), this calls the view directly, and remembers each fixed path's view
    instead of matching the URL patterns again on every request. A path that does not resolve, or takes arguments,
    goes through the whole stack as usual (404 pages, ...). Saves about a tenth of a millisecond of CPU per
    webhook, which the voice bench measures (bench/voice.py, ``CPU in Django per request``).
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.prefixes = tuple(settings.CALLTRACK_LEAN_PATHS)
        self.views: dict[tuple[object, str], Any] = {}

    def __call__(self, request: HttpRequest) -> HttpResponse:
        path = request.path_info
        if not self.prefixes or not path.startswith(self.prefixes):
            return self.get_response(request)
        key = (get_urlconf(), path)
        match = self.views.get(key)
        if match is None:
            try:
                match = resolve(path)
            except Resolver404:
                return self.get_response(request)
            if match.args or match.kwargs:
                return self.get_response(request)
            self.views[key] = match  # fixed paths only: as many entries as the URL map has fixed hot paths
        request.resolver_match = match
        return match.func(request)
