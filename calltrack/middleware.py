"""Request middleware of the project."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse


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
