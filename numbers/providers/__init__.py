"""Carriers: ``get_carrier()`` returns the one CALLTRACK_CARRIER names (``local`` by default)."""

from __future__ import annotations

from urllib.parse import urlencode

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from calltrack.carriers import sms_webhook_urls, webhook_urls
from calltrack.numbers.providers.base import (
    AvailableNumber,
    CallerLookupResult,
    Carrier,
    CarrierError,
    PortStatusResult,
    PurchasedNumber,
    RecordingAudio,
)

__all__ = ["AvailableNumber", "CallerLookupResult", "Carrier", "CarrierError", "PortStatusResult", "PurchasedNumber", "RecordingAudio", "fallback_url",
           "get_carrier", "sms_webhook_urls", "webhook_urls"]

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


def fallback_url(failsafe: str = "") -> str:
    """The voice fallback URL for a number whose fail-safe is ``failsafe`` (E.164, or '' for
    CALLTRACK_FAILSAFE_NUMBER): Twilio requests it when /voice/incoming fails, and /voice/fallback answers with
    a dial of that number without the database. '' when CALLTRACK_FALLBACK_URL is off."""
    if not settings.CALLTRACK_FALLBACK_URL:
        return ""
    base = webhook_urls()[0].rsplit("/voice/", 1)[0]
    return f"{base}/voice/fallback" + (f"?{urlencode({'failsafe': failsafe})}" if failsafe else "")
