"""What each ad platform is sent for a converting call: pure functions from plain data to a request, or a reason not to.

Nothing here reads the database, the clock or the network: ``upload_build`` takes the destination and the call as
plain data (``Destination``, ``UploadCall``) and the time, and answers a ``Plan`` (the request's URL, its JSON body,
and which OAuth token it needs) or ``Ineligible`` (why nothing is sent, in words). ``answer_read`` turns the platform's
answer into sent / refused / retry. ``tracking.services.ad_uploads`` loads, locks, sends and writes.

The requests follow each platform's documented HTTP form:

- Google Ads (gRPC, through the official ``google-ads`` library: ``tracking.services.google_ads``; the body is the
  request message in its JSON form): ConversionUploadService.UploadClickConversions, one ClickConversion with gclid,
  gbraid or wbraid, ``orderId`` = the call, ``conversionDateTime`` "yyyy-mm-dd hh:mm:ss+hh:mm" in the account's time
  zone; without a click id, UploadCallConversions for a call from a Google call asset (``callerId`` E.164,
  ``callStartDateTime``), else an enhanced conversion for leads (``userIdentifiers[].hashedPhoneNumber``: SHA-256 of
  the E.164 number) when the destination allows hashed phones; adjustments through
  ConversionAdjustmentUploadService.UploadConversionAdjustments (RETRACTION, RESTATEMENT) by ``orderId``.
- GA4: a Measurement Protocol event to ``/mp/collect?measurement_id=...&api_secret=...`` with the visitor's
  ``client_id`` (from the ``_ga`` cookie dni.js reported).
- Meta: a Conversions API event to ``/{version}/{dataset id}/events`` with ``action_source`` phone_call, ``fbc``
  "fb.1.<click ms>.<fbclid>", ``user_data.ph`` the SHA-256 of the number's digits (E.164 without '+'),
  ``event_id`` = the call (Meta de-duplicates on it) and ``event_time`` in epoch seconds.
- Microsoft Advertising: ``OfflineConversions/Apply`` (Campaign Management v13, REST) by ``MicrosoftClickId``;
  adjustments through ``OfflineConversionAdjustments/Apply`` (Retract, Restate).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

GOOGLE_ADS_API_VERSION = "v26"
META_API_VERSION = "v24.0"
MICROSOFT_API_VERSION = "v13"

# The platforms' documented windows.
GOOGLE_CLICK_WINDOW = timedelta(days=90)  # the longest click-through window a conversion action takes
GOOGLE_ADJUSTMENT_WINDOW = timedelta(days=54)  # ConversionAdjustmentUploadError.CONVERSION_EXPIRED: "more than 54 days ago"
MICROSOFT_CLICK_WINDOW = timedelta(days=90)
META_EVENT_WINDOW = timedelta(days=7)  # event_time at most 7 days before the event is sent
GA4_EVENT_WINDOW = timedelta(hours=72)  # timestamp_micros at most 72 hours back

CONSENT_YES = frozenset({"granted", "yes", "true", "1", "y", "on"})
CONSENT_NO = frozenset({"denied", "no", "false", "0", "n", "off"})
GOOGLE_CLICK_IDS = ("gclid", "gbraid", "wbraid")
GA_CLIENT_ID = re.compile(r"^\d{1,20}\.\d{1,20}$")
ADJUSTABLE = frozenset({"local", "google_ads", "microsoft"})


@dataclass(frozen=True)
class Destination:
    id: int
    kind: str
    trigger: str = "revenue"
    min_talk_time: int = 60
    value_from: str = "conversion"
    fixed_value: Decimal = Decimal("0")
    currency: str = "USD"
    consent_required: bool = False
    hashed_phone_allowed: bool = False
    account_id: str = ""
    conversion_action: str = ""
    account_timezone: str = "UTC"
    credentials: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class UploadCall:
    id: int
    caller_number: str
    started_at: datetime
    conversion_at: datetime  # when the call converted (or ended, for a qualified call)
    click_at: datetime  # when the visitor's session began (the click), else the call's start
    marketing: dict[str, str] = field(default_factory=dict)
    answered: bool = False
    talk_time: int = 0
    revenue_converted: bool = False
    payout_converted: bool = False
    revenue: Decimal = Decimal("0")
    payout: Decimal = Decimal("0")
    google_call: bool = False  # from a Google call asset (the call's source says so)


@dataclass(frozen=True)
class Plan:
    url: str
    body: dict[str, Any]
    token: str = ""  # "google" or "microsoft": an OAuth access token is fetched first; "" none
    headers: dict[str, str] = field(default_factory=dict)
    local: bool = False  # recorded, not sent
    platform_id: str = ""  # what identifies it on the platform (order id, event id)
    rpc: str = ""  # Google Ads: the gRPC method the body is the request of (url is then empty)

    def encoded(self) -> bytes:
        return json.dumps(self.body, separators=(",", ":"), sort_keys=True).encode()


@dataclass(frozen=True)
class Ineligible:
    reason: str


# --- Small pure helpers -------------------------------------------------------------------------------------------


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def e164(number: str) -> str | None:
    """``number`` as E.164 ("+" and 8 to 15 digits), or None (anonymous, short codes, garbage)."""
    digits = re.sub(r"[^\d]", "", number or "")
    if not (number or "").strip().startswith("+") or not 8 <= len(digits) <= 15 or digits.startswith("0"):
        return None
    return "+" + digits


def google_phone_hash(number: str) -> str | None:
    """Google's enhanced conversions: the E.164 number, '+' included, SHA-256 hex."""
    normalised = e164(number)
    return sha256_hex(normalised) if normalised else None


def meta_phone_hash(number: str) -> str | None:
    """Meta's ``ph``: digits only with the country code (E.164 without '+'), SHA-256 hex."""
    normalised = e164(number)
    return sha256_hex(normalised[1:]) if normalised else None


def google_time(at: datetime, zone: str) -> str:
    """'yyyy-mm-dd hh:mm:ss+hh:mm' in the account's time zone (Google's conversion date-time format)."""
    local = at.astimezone(ZoneInfo(zone))
    text = local.strftime("%Y-%m-%d %H:%M:%S%z")
    return text[:-2] + ":" + text[-2:]


def ga_client_id(value: str) -> str | None:
    """The client id of a ``_ga`` cookie ("GA1.1.123.456" -> "123.456"), or of an id already taken out of it."""
    parts = (value or "").strip().split(".")
    candidate = ".".join(parts[-2:]) if len(parts) >= 2 else ""
    return candidate if GA_CLIENT_ID.match(candidate) else None


def consent_given(marketing: dict[str, str]) -> bool:
    return str(marketing.get("consent", "")).strip().lower() in CONSENT_YES


def upload_value(destination: Destination, call: UploadCall) -> Decimal:
    if destination.value_from == "fixed":
        return destination.fixed_value
    if destination.trigger == "payout":
        return call.payout
    return call.revenue


def triggered(destination: Destination, call: UploadCall) -> bool:
    """Whether the call did what the destination sends: converted on its side, or was a qualified call."""
    if destination.trigger == "revenue":
        return call.revenue_converted
    if destination.trigger == "payout":
        return call.payout_converted
    return call.answered and call.talk_time >= destination.min_talk_time


def _days(delta: timedelta) -> str:
    days = delta.total_seconds() / 86400
    return f"{days:.0f} days" if days >= 2 else f"{delta.total_seconds() / 3600:.0f} hours"


def _money(value: Decimal) -> float:
    return float(value.quantize(Decimal("0.01")))


def _event_id(call: UploadCall) -> str:
    return f"call-{call.id}"


# --- Builders --------------------------------------------------------------------------------------------------------


def upload_build(destination: Destination, call: UploadCall, *, now: datetime, base_urls: dict[str, str],
                 adjustment: str = "") -> Plan | Ineligible:
    """The request that sends ``call`` to ``destination`` (``adjustment``: "retraction" or "restatement" of what was
    sent before), or why none is sent. Consent is checked first: without it nothing about the call leaves calltrack."""
    if destination.consent_required and not consent_given(call.marketing):
        return Ineligible("no consent: the visitor's landing page did not report consent=granted")
    builder = _BUILDERS[destination.kind]
    return builder(destination, call, now=now, base_urls=base_urls, adjustment=adjustment)


def _local(destination: Destination, call: UploadCall, *, now: datetime, base_urls: dict[str, str], adjustment: str) -> Plan:
    body: dict[str, Any] = {
        "call_id": call.id, "event_id": _event_id(call), "conversion_time": call.conversion_at.isoformat(),
        "value": str(upload_value(destination, call)), "currency": destination.currency,
        "click_ids": {k: call.marketing[k] for k in ("gclid", "gbraid", "wbraid", "fbclid", "msclkid") if call.marketing.get(k)},
    }
    if adjustment:
        body = {"call_id": call.id, "event_id": _event_id(call), "adjustment": adjustment, "adjustment_time": now.isoformat(),
                **({"value": str(upload_value(destination, call)), "currency": destination.currency} if adjustment == "restatement" else {})}
    return Plan(url="", body=body, local=True, platform_id=_event_id(call))


def google_consent(marketing: dict[str, str]) -> dict[str, str]:
    """Google's ``consent.ad_user_data``: GRANTED or DENIED as the landing page reported it, nothing when it said nothing."""
    said = str(marketing.get("consent", "")).strip().lower()
    if said in CONSENT_YES:
        return {"adUserData": "GRANTED"}
    if said in CONSENT_NO:
        return {"adUserData": "DENIED"}
    return {}


def _google_ads(destination: Destination, call: UploadCall, *, now: datetime, base_urls: dict[str, str], adjustment: str) -> Plan | Ineligible:
    """One ConversionUploadService / ConversionAdjustmentUploadService request, in the protocol buffers' JSON form
    (camelCase field names): ``tracking.services.google_ads`` makes the request message from it and sends it over
    gRPC with the official client library. Which request: a click id (gclid, then gbraid, then wbraid) gives a click
    conversion; without one, a call from a Google call asset gives a call conversion (caller id and call start);
    otherwise an enhanced conversion for leads (the hashed phone) when the destination allows it."""
    customer = re.sub(r"\D", "", destination.account_id)
    action = destination.conversion_action.strip()
    action_name = action if action.startswith("customers/") else f"customers/{customer}/conversionActions/{action}"
    order_id = _event_id(call)
    click = next(((k, call.marketing[k]) for k in GOOGLE_CLICK_IDS if call.marketing.get(k)), None)
    caller = e164(call.caller_number)
    consent = google_consent(call.marketing)
    if adjustment:
        what = "retraction" if adjustment == "retraction" else "restatement"
        if click is None and call.google_call:
            return Ineligible(f"{what} not sent: a Google Ads call conversion has no order id, so the API cannot name it "
                              "(adjust it in Google Ads)")
        if click is not None and click[0] == "wbraid":
            return Ineligible(f"{what} not sent: Google Ads takes no adjustments of wbraid conversions")
        age = now - call.conversion_at
        if age > GOOGLE_ADJUSTMENT_WINDOW:
            return Ineligible(f"{what} not sent: outside Google Ads' adjustment window: the conversion was {_days(age)} ago (at most 54 days)")
        item: dict[str, Any] = {
            "adjustmentType": "RETRACTION" if adjustment == "retraction" else "RESTATEMENT",
            "conversionAction": action_name,
            "orderId": order_id,
            "adjustmentDateTime": google_time(now, destination.account_timezone),
        }
        if adjustment == "restatement":
            item["restatementValue"] = {"adjustedValue": _money(upload_value(destination, call)), "currencyCode": destination.currency}
        return Plan("", {"customerId": customer, "conversionAdjustments": [item], "partialFailure": True},
                    token="google", rpc="UploadConversionAdjustments", platform_id=order_id)
    value = {"conversionValue": _money(upload_value(destination, call)), "currencyCode": destination.currency}
    if click is None and call.google_call:
        if caller is None:
            return Ineligible("a Google call asset call without the caller's number in E.164: Google Ads cannot match it")
        age = call.conversion_at - call.started_at
        if age > GOOGLE_CLICK_WINDOW:
            return Ineligible(f"outside Google Ads' window: the call was {_days(age)} before the conversion (at most 90 days)")
        call_conversion: dict[str, Any] = {
            "callerId": caller,
            "callStartDateTime": google_time(call.started_at, destination.account_timezone),
            "conversionAction": action_name,
            "conversionDateTime": google_time(call.conversion_at, destination.account_timezone),
            **value,
        }
        if consent:
            call_conversion["consent"] = consent
        return Plan("", {"customerId": customer, "conversions": [call_conversion], "partialFailure": True},
                    token="google", rpc="UploadCallConversions", platform_id=order_id)
    conversion: dict[str, Any] = {
        "conversionAction": action_name,
        "conversionDateTime": google_time(call.conversion_at, destination.account_timezone),
        **value,
        "orderId": order_id,
    }
    if click is not None:
        age = call.conversion_at - call.click_at
        if age > GOOGLE_CLICK_WINDOW:
            return Ineligible(f"outside Google Ads' click window: the click was {_days(age)} before the conversion (at most 90 days)")
        conversion[click[0]] = click[1]
    else:
        hashed = google_phone_hash(call.caller_number) if destination.hashed_phone_allowed else None
        if hashed is None:
            why = ("the caller's number is not a full international number" if destination.hashed_phone_allowed
                   else "hashed phones are not allowed for this destination")
            return Ineligible(f"no Google click id (gclid, gbraid, wbraid) on the visit, not a Google call asset call, "
                              f"and no enhanced conversion: {why}")
        conversion["userIdentifiers"] = [{"userIdentifierSource": "FIRST_PARTY", "hashedPhoneNumber": hashed}]
    if consent:
        conversion["consent"] = consent
    return Plan("", {"customerId": customer, "conversions": [conversion], "partialFailure": True},
                token="google", rpc="UploadClickConversions", platform_id=order_id)


def _ga4(destination: Destination, call: UploadCall, *, now: datetime, base_urls: dict[str, str], adjustment: str) -> Plan | Ineligible:
    if adjustment:
        return Ineligible("GA4's Measurement Protocol takes no adjustments: correct it in GA4 if needed")
    client_id = ga_client_id(call.marketing.get("ga_client_id", ""))
    if client_id is None:
        return Ineligible("no GA4 client id: the visitor's page had no _ga cookie (or no DNI session)")
    age = now - call.conversion_at
    if age > GA4_EVENT_WINDOW:
        return Ineligible(f"outside GA4's window: the conversion was {_days(age)} ago (at most 72 hours)")
    params: dict[str, Any] = {
        "value": _money(upload_value(destination, call)), "currency": destination.currency,
        "transaction_id": _event_id(call), "call_id": call.id, "talk_time": call.talk_time,
    }
    for key, name in (("utm_source", "source"), ("utm_medium", "medium"), ("utm_campaign", "campaign"), ("utm_term", "term"), ("utm_content", "content")):
        if call.marketing.get(key):
            params[name] = call.marketing[key]
    body = {
        "client_id": client_id,
        "timestamp_micros": int(call.conversion_at.timestamp() * 1_000_000),
        "events": [{"name": destination.conversion_action.strip() or "phone_call_conversion", "params": params}],
    }
    query = urlencode({"measurement_id": destination.account_id.strip(), "api_secret": destination.credentials.get("api_secret", "")})
    return Plan(f"{base_urls['ga4'].rstrip('/')}/mp/collect?{query}", body, platform_id=_event_id(call))


def _meta(destination: Destination, call: UploadCall, *, now: datetime, base_urls: dict[str, str], adjustment: str) -> Plan | Ineligible:
    if adjustment:
        return Ineligible("Meta's Conversions API takes no adjustments: the event stays as sent")
    age = now - call.conversion_at
    if age > META_EVENT_WINDOW:
        return Ineligible(f"outside Meta's window: the conversion was {_days(age)} ago (event_time at most 7 days back)")
    user_data: dict[str, Any] = {}
    fbclid = call.marketing.get("fbclid", "")
    if fbclid:
        user_data["fbc"] = f"fb.1.{int(call.click_at.timestamp() * 1000)}.{fbclid}"
    if destination.hashed_phone_allowed:
        hashed = meta_phone_hash(call.caller_number)
        if hashed:
            user_data["ph"] = [hashed]
    if not user_data:
        return Ineligible("no fbclid on the visit, and no hashed phone (not allowed, or not a full international number)")
    body = {"data": [{
        "event_name": destination.conversion_action.strip() or "Lead",
        "event_time": int(call.conversion_at.timestamp()),
        "event_id": _event_id(call),
        "action_source": "phone_call",
        "user_data": user_data,
        "custom_data": {"value": _money(upload_value(destination, call)), "currency": destination.currency},
    }]}
    query = urlencode({"access_token": destination.credentials.get("access_token", "")})
    url = f"{base_urls['meta'].rstrip('/')}/{META_API_VERSION}/{destination.account_id.strip()}/events?{query}"
    return Plan(url, body, platform_id=_event_id(call))


def microsoft_time(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _microsoft(destination: Destination, call: UploadCall, *, now: datetime, base_urls: dict[str, str], adjustment: str) -> Plan | Ineligible:
    msclkid = call.marketing.get("msclkid", "")
    if not msclkid:
        return Ineligible("no Microsoft click id (msclkid) on the visit")
    age = call.conversion_at - call.click_at
    if age > MICROSOFT_CLICK_WINDOW and not adjustment:
        return Ineligible(f"outside Microsoft Advertising's click window: the click was {_days(age)} before the conversion (at most 90 days)")
    creds = destination.credentials
    headers = {"DeveloperToken": creds.get("developer_token", ""), "CustomerId": creds.get("customer_id", ""),
               "CustomerAccountId": destination.account_id.strip()}
    base = f"{base_urls['microsoft'].rstrip('/')}/CampaignManagement/{MICROSOFT_API_VERSION}"
    goal = destination.conversion_action.strip()
    if adjustment:
        item: dict[str, Any] = {
            "AdjustmentType": "Retract" if adjustment == "retraction" else "Restate",
            "AdjustmentTime": microsoft_time(now),
            "ConversionName": goal,
            "ConversionTime": microsoft_time(call.conversion_at),
            "MicrosoftClickId": msclkid,
        }
        if adjustment == "restatement":
            item["AdjustmentValue"] = _money(upload_value(destination, call))
            item["AdjustmentCurrencyCode"] = destination.currency
        return Plan(f"{base}/OfflineConversionAdjustments/Apply", {"OfflineConversionAdjustments": [item]},
                    token="microsoft", headers=headers, platform_id=msclkid)
    body = {"OfflineConversions": [{
        "ConversionCurrencyCode": destination.currency,
        "ConversionName": goal,
        "ConversionTime": microsoft_time(call.conversion_at),
        "ConversionValue": _money(upload_value(destination, call)),
        "MicrosoftClickId": msclkid,
    }]}
    return Plan(f"{base}/OfflineConversions/Apply", body, token="microsoft", headers=headers, platform_id=msclkid)


_BUILDERS = {"local": _local, "google_ads": _google_ads, "ga4": _ga4, "meta": _meta, "microsoft": _microsoft}


# --- Reading the answer ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    status: str  # "sent", "refused" or "retry"
    reason: str
    platform_id: str = ""
    retry_after: timedelta | None = None  # the platform said when to try again (else the usual backoff)


def _json(body: bytes) -> Any:
    try:
        return json.loads(body.decode("utf-8", "replace") or "null")
    except ValueError:
        return None


def _error_message(data: Any) -> str:
    """The platform's own words for an error (Google and Meta: error.message; Microsoft: Errors[].Message)."""
    if isinstance(data, dict):
        error = data.get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
        if isinstance(error, str):
            return error
        for key in ("Errors", "OperationErrors", "PartialErrors", "BatchErrors"):
            items = data.get(key)
            if isinstance(items, list) and items and isinstance(items[0], dict) and items[0].get("Message"):
                return str(items[0]["Message"])
        if data.get("Message"):
            return str(data["Message"])
    return ""


def answer_read(kind: str, *, status: int, body: bytes, plan: Plan) -> Outcome:
    """Sent, refused (with the platform's reason) or retry (its servers were busy or failing)."""
    data = _json(body)
    if status in (408, 429) or status >= 500:
        return Outcome("retry", f"HTTP {status}: {_error_message(data) or 'the platform is busy or failing'}"[:500])
    if not 200 <= status < 300:
        return Outcome("refused", f"HTTP {status}: {_error_message(data) or body.decode('utf-8', 'replace')[:200] or 'no reason given'}"[:500])
    if kind == "microsoft" and isinstance(data, dict) and data.get("PartialErrors"):
        return Outcome("refused", f"Microsoft Advertising: {_error_message(data)}"[:500])
    if kind == "meta" and isinstance(data, dict):
        return Outcome("sent", f"received by Meta ({data.get('events_received', 0)} event)", str(data.get("fbtrace_id", "")) or plan.platform_id)
    return Outcome("sent", "accepted", plan.platform_id)


# --- Configuration checks ------------------------------------------------------------------------------------------------

#: The credentials each platform needs (stored server-side, never shown back).
CREDENTIALS: dict[str, tuple[str, ...]] = {
    "local": (),
    # login_customer_id optional; developer_token optional too: Google sunset developer tokens on 2026-09-09 (API access
    # now belongs to the Google Cloud project of the OAuth client; a token still stored is sent, and ignored by Google).
    "google_ads": ("client_id", "client_secret", "refresh_token"),
    "ga4": ("api_secret",),
    "meta": ("access_token",),
    "microsoft": ("developer_token", "customer_id", "client_id", "refresh_token"),  # client_secret optional
}


def destination_problems(destination: Any) -> dict[str, str]:
    """What is missing or wrong in a destination's settings, by field (its credentials are checked on sending)."""
    problems: dict[str, str] = {}
    kind = destination.kind
    if kind != "local" and not (destination.account_id or "").strip():
        problems["account_id"] = "This platform needs its account id."
    if kind == "google_ads" and destination.account_id and not re.fullmatch(r"[\d-]{6,20}", destination.account_id.strip()):
        problems["account_id"] = "A Google Ads customer id is digits (123-456-7890)."
    if kind in ("google_ads", "microsoft") and not (destination.conversion_action or "").strip():
        problems["conversion_action"] = "Name the conversion action (Google Ads: its id) or goal (Microsoft)."
    if kind == "ga4" and destination.account_id and not destination.account_id.strip().startswith("G-"):
        problems["account_id"] = "A GA4 measurement id starts with G-."
    try:
        ZoneInfo(destination.account_timezone or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        problems["account_timezone"] = "Not a time zone name (e.g. America/New_York)."
    return problems
