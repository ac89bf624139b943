"""Request middleware of the project."""

from __future__ import annotations

from collections.abc import Callable
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


def axes_client_ip(request: HttpRequest) -> str | None:
    """django-axes' client address (AXES_CLIENT_IP_CALLABLE): the DNI endpoints' rule (REMOTE_ADDR, or our own
    proxies' X-Forwarded-For entry with CALLTRACK_PROXY_HOPS); None when that is not an IP address (PostgreSQL's
    inet column would refuse it, and a forged header must not fail the login)."""
    import ipaddress

    try:
        return str(ipaddress.ip_address(client_ip(request)))
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
