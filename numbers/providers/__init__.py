"""Carriers: ``get_carrier()`` returns the one CALLTRACK_CARRIER names (``local`` by default)."""

from __future__ import annotations

from collections.abc import Callable
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

__all__ = ["AvailableNumber", "CallerLookupResult", "Carrier", "CarrierError", "PortStatusResult", "PurchasedNumber", "RecordingAudio", "CarrierCache",
           "account_credentials", "fallback_url",
           "get_carrier", "sms_webhook_urls", "webhook_urls"]

CARRIERS = ("local", "twilio")


def get_carrier(name: str | None = None, *, account_id: int | None = None) -> Carrier:
    """The carrier ``name`` (default CALLTRACK_CARRIER). With ``account_id``, the twilio carrier works in that
    account's Twilio subaccount when the account has one (``Account.twilio_account_sid``/``twilio_auth_token``:
    one statement), else in the install's (TWILIO_* settings). Pass the account of the number, call or text the
    carrier is asked about, never the request's."""
    name = (name or settings.CALLTRACK_CARRIER or "local").lower()
    if name == "local":
        from calltrack.numbers.providers.local import LocalCarrier

        return LocalCarrier()
    if name == "twilio":
        from calltrack.numbers.providers.twilio import TwilioCarrier

        credentials = account_credentials(account_id) if account_id is not None else None
        if credentials is not None:
            return TwilioCarrier(account_sid=credentials[0], auth_token=credentials[1])
        return TwilioCarrier.from_settings()
    raise ImproperlyConfigured(f"CALLTRACK_CARRIER={name!r} is not a carrier; choose one of {', '.join(CARRIERS)}.")


def account_credentials(account_id: int) -> tuple[str, str] | None:
    """The (SID, auth token) of ``account_id``'s Twilio subaccount, or None (the install's)."""
    from calltrack.models import Account

    row = Account.objects.filter(pk=account_id).values_list("twilio_account_sid", "twilio_auth_token").first()
    return (row[0], row[1]) if row and row[0] and row[1] else None


class CarrierCache:
    """Carriers by (name, account) for a loop over many numbers: each account's credentials read once.
    ``factory``: how a carrier is made (the caller's ``get_carrier``, so a test's replacement of it counts)."""

    def __init__(self, factory: Callable[..., Carrier] | None = None) -> None:
        self._carriers: dict[tuple[str, int | None], Carrier] = {}
        self._factory = factory or get_carrier

    def get(self, name: str | None, account_id: int | None) -> Carrier:
        key = ((name or settings.CALLTRACK_CARRIER or "local").lower(), account_id)
        if key not in self._carriers:
            self._carriers[key] = self._factory(key[0], account_id=account_id)
        return self._carriers[key]


def fallback_url(failsafe: str = "") -> str:
    """The voice fallback URL for a number whose fail-safe is ``failsafe`` (E.164, or '' for
    CALLTRACK_FAILSAFE_NUMBER): Twilio requests it when /voice/incoming fails, and /voice/fallback answers with
    a dial of that number without the database. '' when CALLTRACK_FALLBACK_URL is off."""
    if not settings.CALLTRACK_FALLBACK_URL:
        return ""
    base = webhook_urls()[0].rsplit("/voice/", 1)[0]
    return f"{base}/voice/fallback" + (f"?{urlencode({'failsafe': failsafe})}" if failsafe else "")
