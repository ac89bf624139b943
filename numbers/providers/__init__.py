"""Carriers: ``get_carrier()`` returns the one CALLTRACK_CARRIER names (``local`` by default)."""

from __future__ import annotations

from urllib.parse import urlencode

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from calltrack.numbers.providers.base import (
    AvailableNumber,
    Carrier,
    CarrierError,
    PortStatusResult,
    PurchasedNumber,
    RecordingAudio,
)

__all__ = ["AvailableNumber", "Carrier", "CarrierError", "PortStatusResult", "PurchasedNumber", "RecordingAudio", "fallback_url",
           "get_carrier", "webhook_urls"]

CARRIERS = ("local", "twilio")


def get_carrier(name: str | None = None) -> Carrier:
    name = (name or settings.CALLTRACK_CARRIER or "local").lower()
    if name == "local":
        from calltrack.numbers.providers.local import LocalCarrier

        return LocalCarrier()
    if name == "twilio":
        from calltrack.numbers.providers.twilio import TwilioCarrier

        return TwilioCarrier.from_settings()
    raise ImproperlyConfigured(f"CALLTRACK_CARRIER={name!r} is not a carrier; choose one of {', '.join(CARRIERS)}.")


def webhook_urls() -> tuple[str, str]:
    """Absolute voice and status URLs the carrier calls (from CALLTRACK_PUBLIC_BASE_URL)."""
    base = (settings.CALLTRACK_PUBLIC_BASE_URL or "http://localhost:8000").rstrip("/")
    # Fixed paths: operators paste them into Twilio too (see calltrack/urls.py).
    return f"{base}/voice/incoming", f"{base}/voice/status"


def fallback_url(failsafe: str = "") -> str:
    """The voice fallback URL for a number whose fail-safe is ``failsafe`` (E.164, or '' for
    CALLTRACK_FAILSAFE_NUMBER): Twilio requests it when /voice/incoming fails, and /voice/fallback answers with
    a dial of that number without the database. '' when CALLTRACK_FALLBACK_URL is off."""
    if not getattr(settings, "CALLTRACK_FALLBACK_URL", True):
        return ""
    base = webhook_urls()[0].rsplit("/voice/", 1)[0]
    return f"{base}/voice/fallback" + (f"?{urlencode({'failsafe': failsafe})}" if failsafe else "")
