"""Google Ads through the official ``google-ads`` client library (gRPC): uploads, adjustments, conversion actions.

``tracking.services.ad_platforms`` decides what is sent (a request message in its JSON form, ``Plan.rpc`` naming the
method); this module turns it into the library's request message and sends it with the library's service client, then
reads the answer (partial failures included) into sent / refused / retry.

The client is built with ``GoogleAdsClient(credentials=..., developer_token=..., login_customer_id=..., version=...)``
rather than ``GoogleAdsClient.load_from_dict``: ``load_from_dict`` exchanges the refresh token for an access token at
once, with ``requests``, straight to accounts.google.com, past calltrack's outbound rules and with no way to point it at
a local fake. calltrack makes that same OAuth refresh-token grant itself (``ad_uploads._access_token``: outbound rules,
timeouts, its answer in words) and hands the library ``google.oauth2.credentials.Credentials`` holding the access token.
Everything else (the request messages, the developer-token and login-customer-id metadata, the gRPC channel, the
errors) is the library's. Tests replace the service's gRPC channel (its transport's ``create_channel``) with a fake
that records each request and answers as Google does: no network.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import grpc
from django.conf import settings
from django.core.cache import cache
from google.ads.googleads.client import GoogleAdsClient
from google.ads.googleads.errors import GoogleAdsException
from google.api_core import exceptions as api_exceptions
from google.oauth2.credentials import Credentials

from tracking.services import ad_platforms as platforms

VERSION = platforms.GOOGLE_ADS_API_VERSION

#: Plan.rpc -> (the service, its client's method, the request message's name).
RPCS: dict[str, tuple[str, str, str]] = {
    "UploadClickConversions": ("ConversionUploadService", "upload_click_conversions", "UploadClickConversionsRequest"),
    "UploadCallConversions": ("ConversionUploadService", "upload_call_conversions", "UploadCallConversionsRequest"),
    "UploadConversionAdjustments": (
        "ConversionAdjustmentUploadService", "upload_conversion_adjustments", "UploadConversionAdjustmentsRequest"),
}

#: gRPC codes Google may get over: tried again with backoff. Every other code refuses.
RETRY_CODES = frozenset({
    grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.INTERNAL, grpc.StatusCode.ABORTED,
})

#: Google's documented waits before an upload refused as too recent is tried again (import call conversions guide:
#: TOO_RECENT_CONVERSION_ACTION 6 hours, TOO_RECENT_CALL 12 hours).
TOO_RECENT_WAIT = {"TOO_RECENT_CONVERSION_ACTION": timedelta(hours=6), "TOO_RECENT_CALL": timedelta(hours=12)}

CONVERSION_ACTIONS_QUERY = (
    "SELECT conversion_action.id, conversion_action.name, conversion_action.type, conversion_action.status "
    "FROM conversion_action WHERE conversion_action.status = 'ENABLED' ORDER BY conversion_action.name"
)
CONVERSION_ACTIONS_CACHE_SECONDS = 600


class GoogleAdsUnavailable(Exception):
    """The account's conversion actions could not be listed: the reason, in words."""


def google_ads_client(*, credentials: dict[str, str], access_token: str) -> GoogleAdsClient:
    login = re.sub(r"\D", "", credentials.get("login_customer_id", ""))
    return GoogleAdsClient(  # a developer token still stored is sent (Google ignores it since its 2026-09-09 sunset)
        credentials=Credentials(token=access_token), developer_token=credentials.get("developer_token") or None,
        login_customer_id=login or None, version=VERSION, use_proto_plus=True,
    )


def _request_type(name: str) -> Any:
    from importlib import import_module

    module = "conversion_adjustment_upload_service" if "Adjustment" in name else "conversion_upload_service"
    return getattr(import_module(f"google.ads.googleads.{VERSION}.services.types.{module}"), name)


def request_message(plan: platforms.Plan) -> Any:
    """The library's request message for ``plan`` (its body is that message in the protocol buffers' JSON form; an
    unknown field raises, so a typo can never be dropped silently)."""
    return _request_type(RPCS[plan.rpc][2]).from_json(json.dumps(plan.body))


def _error_names(failure: Any) -> list[tuple[str, str]]:
    """(error code name, message) of each error of a GoogleAdsFailure."""
    names = []
    for error in getattr(failure, "errors", ()) or ():
        code = type(error.error_code).pb(error.error_code)
        which = code.WhichOneof("error_code") or ""
        name = code.DESCRIPTOR.fields_by_name[which].enum_type.values_by_number[getattr(code, which)].name if which else ""
        names.append((name, str(error.message)))
    return names


def _rpc_error(exc: Exception) -> tuple[grpc.StatusCode, str]:
    """The gRPC code and message of a failed call: the library's transport turns grpc's RpcError into
    google.api_core's GoogleAPICallError (``grpc_status_code``, ``message``); a bare RpcError has ``code()``."""
    if isinstance(exc, api_exceptions.GoogleAPICallError):
        return exc.grpc_status_code or grpc.StatusCode.UNKNOWN, str(exc.message)
    code_of, details_of = getattr(exc, "code", None), getattr(exc, "details", None)  # a grpc.Call's, when it is one
    code = code_of() if callable(code_of) else grpc.StatusCode.UNKNOWN
    details = details_of() if callable(details_of) else str(exc)
    return code, str(details)


def _partial_failure(response: Any) -> list[tuple[str, str]]:
    status = getattr(response, "partial_failure_error", None)
    if status is None or not status.code:
        return []
    from importlib import import_module

    failure_type = import_module(f"google.ads.googleads.{VERSION}.errors.types.errors").GoogleAdsFailure
    names: list[tuple[str, str]] = []
    for detail in status.details:
        try:
            names.extend(_error_names(failure_type.deserialize(detail.value)))
        except Exception:  # noqa: BLE001 - a detail we cannot read: the status message says it
            continue
    return names or [("", str(status.message))]


#: What to do about an error, where Google's words alone do not say it.
HINTS = {
    # Since 2026-06-15 UploadClickConversions refuses accounts that sent no offline conversion upload between
    # 2025-12-17 and 2026-06-15; Google points them at its Data Manager API (not built in calltrack yet).
    "CUSTOMER_NOT_ALLOWLISTED_FOR_THIS_FEATURE": "this account may no longer upload offline click conversions through "
                                                 "the Google Ads API; Google's Data Manager API replaces it",
}


def _refusal(names: list[tuple[str, str]]) -> platforms.Outcome:
    wait = next((TOO_RECENT_WAIT[name] for name, _ in names if name in TOO_RECENT_WAIT), None)
    words = "; ".join(f"{message} ({name})" if name else message for name, message in names)
    hints = [HINTS[name] for name, _ in names if name in HINTS]
    if hints:
        words += ": " + "; ".join(hints)
    if wait is not None:
        return platforms.Outcome("retry", f"Google Ads: {words}"[:500], retry_after=wait)
    return platforms.Outcome("refused", f"Google Ads: {words}"[:500])


def google_ads_send(*, plan: platforms.Plan, credentials: dict[str, str], access_token: str) -> tuple[platforms.Outcome, str]:
    """Send ``plan`` with the library's service client; the outcome and the answer (its JSON form, an excerpt).
    Never raises for what Google or the network answers."""
    service_name, method, _ = RPCS[plan.rpc]
    client = google_ads_client(credentials=credentials, access_token=access_token)
    service = client.get_service(service_name, version=VERSION)
    try:
        response = getattr(service, method)(request=request_message(plan), retry=None, timeout=settings.CALLTRACK_WEBHOOK_TIMEOUT)
    except GoogleAdsException as exc:
        _close(service)
        names = _error_names(exc.failure) or [("", str(exc.error.details()) if hasattr(exc.error, "details") else str(exc))]
        outcome = _refusal(names)
        if exc.error.code() in RETRY_CODES and outcome.status != "retry":
            outcome = platforms.Outcome("retry", outcome.reason)
        return outcome, f"request id {exc.request_id}: {outcome.reason}"[:2000]
    except (api_exceptions.GoogleAPICallError, grpc.RpcError) as exc:
        _close(service)
        code, details = _rpc_error(exc)
        reason = f"Google Ads {code.name}: {details or 'no details'}"[:500]
        return platforms.Outcome("retry" if code in RETRY_CODES else "refused", reason), reason
    _close(service)
    text = type(response).to_json(response)[:2000]
    names = _partial_failure(response)
    if names:
        return _refusal(names), text
    return platforms.Outcome("sent", "accepted", plan.platform_id), text


def _close(service: Any) -> None:
    """A client is made per upload (its credentials are the destination's): its gRPC channel is closed after it."""
    service.transport.close()


# --- The conversion action picker ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConversionActionChoice:
    id: str
    name: str
    type: str

    @property
    def label(self) -> str:
        return f"{self.name} ({self.type.lower().replace('_', ' ')}, id {self.id})"


def _cache_key(*, account_id: str, credentials: dict[str, str]) -> str:
    fingerprint = hashlib.sha256(json.dumps([account_id, sorted(credentials.items())]).encode()).hexdigest()[:32]
    return f"calltrack:gads-actions:{fingerprint}"


def google_ads_conversion_actions(*, account_id: str, credentials: dict[str, str]) -> list[ConversionActionChoice]:
    """The account's enabled conversion actions (GoogleAdsService.Search), cached ten minutes per account and
    credentials (a new credential asks again). Raises ``GoogleAdsUnavailable`` with the reason in words when the
    credentials are missing or refused, or Google does not answer; a failure is not cached."""
    from tracking.services.ad_uploads import google_access_token

    missing = [name for name in platforms.CREDENTIALS["google_ads"] if not credentials.get(name)]
    if missing:
        raise GoogleAdsUnavailable(f"missing credentials: {', '.join(missing)}")
    customer = re.sub(r"\D", "", account_id)
    if not customer:
        raise GoogleAdsUnavailable("no customer id")
    key = _cache_key(account_id=customer, credentials=credentials)
    cached = cache.get(key)
    if cached is not None:
        return [ConversionActionChoice(**item) for item in cached]
    token, stop = google_access_token(credentials)
    if stop is not None or token is None:
        raise GoogleAdsUnavailable(stop.reason if stop else "no access token")
    client = google_ads_client(credentials=credentials, access_token=token)
    service = client.get_service("GoogleAdsService", version=VERSION)
    try:
        with service:  # the gRPC channel is closed on the way out
            rows = list(service.search(customer_id=customer, query=CONVERSION_ACTIONS_QUERY, retry=None,
                                       timeout=settings.CALLTRACK_WEBHOOK_TIMEOUT))
    except GoogleAdsException as exc:
        words = "; ".join(message for _, message in _error_names(exc.failure)) or str(exc.error)
        raise GoogleAdsUnavailable(f"Google Ads refused: {words}"[:500]) from None
    except (api_exceptions.GoogleAPICallError, grpc.RpcError) as exc:
        code, details = _rpc_error(exc)
        raise GoogleAdsUnavailable(f"Google Ads {code.name}: {details}"[:500]) from None
    choices = [ConversionActionChoice(id=str(row.conversion_action.id), name=str(row.conversion_action.name),
                                      type=row.conversion_action.type_.name) for row in rows]
    cache.set(key, [c.__dict__ for c in choices], CONVERSION_ACTIONS_CACHE_SECONDS)
    return choices
