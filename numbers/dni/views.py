"""The public JSON endpoints of the DNI tag, and the demo landing page.

Thin: parse and check the request, ask :mod:`calltrack.numbers.dni.services`, answer JSON. The endpoints are
called cross-site by landing pages, so they are CSRF-exempt (they use no cookie of ours) and answer
CORS only for the origins configured on the pool.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import re
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import phonenumbers
from django.conf import settings
from django.db import DatabaseError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt

from calltrack import phone, ratelimit
from calltrack.middleware import address_group, client_ip, client_key
from calltrack.numbers.dni import parameters
from calltrack.numbers.dni.pools import (
    POOL_NAME,
    PoolSettings,
    StalePool,
    cached_pool_settings,
    forget_pool_settings,
    pool_settings,
)
from calltrack.numbers.dni.services import (
    MARKETING_KEYS,
    Assignment,
    Visit,
    fallback_assignment,
    number_assign,
    session_heartbeat,
)
from calltrack.numbers.models import NumberPool

logger = logging.getLogger(__name__)

MAX_BODY = 16 * 1024
VISITOR_ID = re.compile(r"^[A-Za-z0-9_.-]{8,64}$")


class BadRequest(Exception):
    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}")


def _error(status: int, message: str, **extra: Any) -> JsonResponse:
    return JsonResponse({"error": message, **extra}, status=status)


def _own_origin(request: HttpRequest) -> str:
    return f"{request.scheme}://{request.get_host()}"


def _cors(response: HttpResponse, origin: str | None) -> HttpResponse:
    if origin:
        response["Access-Control-Allow-Origin"] = origin
        response["Access-Control-Allow-Methods"] = "POST, OPTIONS"
        response["Access-Control-Allow-Headers"] = "Content-Type"
        response["Access-Control-Max-Age"] = "86400"
    response["Vary"] = "Origin"
    response["Cache-Control"] = "no-store"
    return response


def _preflight(request: HttpRequest) -> HttpResponse:
    """CORS preflight: the body (and so the pool) is not known yet; any enabled pool's origin may ask."""
    origin = (request.headers.get("Origin") or "").rstrip("/")
    allowed = any(
        origin in NumberPool(allowed_origins=text).origins
        for text in NumberPool.objects.filter(enabled=True).exclude(allowed_origins="").values_list("allowed_origins", flat=True)
    )
    return _cors(HttpResponse(status=204), origin if allowed else None)


def _rate_limited(*, scope: str, key: str, setting: str, who: str) -> JsonResponse | None:
    """A 429 answer when ``key`` went past the rate in ``setting`` (counted in the shared cache)."""
    rate = ratelimit.parse_rate(getattr(settings, setting), setting=setting)
    verdict = ratelimit.hit(scope=f"dni:{scope}", key=key, rate=rate)
    if verdict.allowed:
        return None
    response = _error(
        429, f"Too many requests: more than {rate.limit} per {rate.period_name} from {who}. Try again in {verdict.retry_after} s.",
        retry_after=verdict.retry_after,
    )
    response["Retry-After"] = str(verdict.retry_after)
    return response


def _json_body(request: HttpRequest) -> dict[str, Any]:
    if len(request.body) > MAX_BODY:
        raise BadRequest("body", f"larger than {MAX_BODY} bytes")
    try:
        data = json.loads(request.body or b"null")
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest("body", f"not valid JSON ({exc})")
    if not isinstance(data, dict):
        raise BadRequest("body", "expected a JSON object")
    return data


_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def _storable(name: str, value: str) -> str:
    """Refuse what no database column can hold: NUL bytes (PostgreSQL) and lone surrogates (not UTF-8)."""
    if _UNSTORABLE.search(value):
        raise BadRequest(name, "contains a NUL byte or an invalid character")
    return value


def _string(data: dict[str, Any], name: str, *, max_length: int, required: bool = False) -> str:
    value = data.get(name)
    if value is None or value == "":
        if required:
            raise BadRequest(name, "is required")
        return ""
    if not isinstance(value, str):
        raise BadRequest(name, f"must be a string, not {type(value).__name__}")
    value = _storable(name, value).strip()
    if len(value) > max_length:
        raise BadRequest(name, f"is longer than {max_length} characters")
    return value


def _url(data: dict[str, Any], name: str) -> str:
    value = _string(data, name, max_length=2000)
    if value:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise BadRequest(name, f"'{value[:100]}' is not an http(s) URL")
    return value


def _pool_key(data: dict[str, Any]) -> str:
    key = _string(data, "pool", max_length=129, required=True)
    if not POOL_NAME.match(key):
        raise BadRequest("pool", f"'{key}' is not a pool key (letters, digits, - and _), or an account's slug, / and a pool key")
    return key


def _visitor_id(data: dict[str, Any]) -> str:
    value = _string(data, "visitor_id", max_length=64, required=True)
    if not VISITOR_ID.match(value):
        raise BadRequest("visitor_id", "must be 8 to 64 letters, digits, '.', '_' or '-'")
    return value


GA_CLIENT_ID = re.compile(r"\d{1,20}\.\d{1,20}")


def _marketing(data: dict[str, Any]) -> dict[str, str]:
    """UTM parameters and click ids: from ``params`` when the tag sends them, else the page URL's query."""
    params = data.get("params")
    if params is None:
        page = data.get("page_url")
        params = {}
        if isinstance(page, str):
            params = dict(parse_qsl(urlsplit(page).query))
    if not isinstance(params, dict):
        raise BadRequest("params", "must be an object of UTM parameters and click ids")
    marketing: dict[str, str] = {}
    for key in MARKETING_KEYS:
        value = params.get(key)
        if value is None or value == "":
            continue
        if not isinstance(value, str):
            raise BadRequest(f"params.{key}", f"must be a string, not {type(value).__name__}")
        if len(value) > 500:
            raise BadRequest(f"params.{key}", "is longer than 500 characters")
        marketing[key] = _storable(f"params.{key}", value).strip()
    # GA4's client id is "<digits>.<digits>" (from the _ga cookie): anything else is not kept.
    if "ga_client_id" in marketing and not GA_CLIENT_ID.fullmatch(marketing["ga_client_id"]):
        del marketing["ga_client_id"]
    return marketing


def _custom(data: dict[str, Any]) -> dict[str, str]:
    """The page's custom parameters (``custom``: an object of names to strings, numbers or booleans), checked for
    shape and size only; which of them the pool accepts is :func:`custom_parameters_accept`'s business."""
    custom = data.get("custom")
    if custom is None:
        return {}
    if not isinstance(custom, dict):
        raise BadRequest("custom", "must be an object of parameter names and values")
    if len(custom) > parameters.MAX_SENT:
        raise BadRequest("custom", f"has more than {parameters.MAX_SENT} parameters")
    sent: dict[str, str] = {}
    for name, value in custom.items():
        if len(name) > parameters.MAX_SENT_NAME or not name.isprintable():
            raise BadRequest("custom", f"'{name[:40]}' is not a parameter name")
        if isinstance(value, bool):
            value = "true" if value else "false"
        elif isinstance(value, (int, float)):
            value = str(value)
        if not isinstance(value, str):
            raise BadRequest(f"custom.{name}", f"must be a string, number or boolean, not {type(value).__name__}")
        if len(value) > parameters.MAX_SENT_VALUE:
            raise BadRequest(f"custom.{name}", f"is longer than {parameters.MAX_SENT_VALUE} characters")
        if "\x00" in value or _has_surrogate(value) or _has_surrogate(name):
            raise BadRequest(f"custom.{name}", "contains a NUL byte or an unpaired surrogate")
        sent[name] = value
    return sent


def _has_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _destination(data: dict[str, Any]) -> tuple[str, str]:
    text = _string(data, "destination", max_length=40)
    if not text:
        return "", ""
    try:
        return phone.to_e164(text), text
    except phone.InvalidPhoneNumber as exc:
        raise BadRequest("destination", str(exc))


def _pool(key: str, *, kept: bool = False) -> PoolSettings:
    """The enabled pool ``key``: read now, or (``kept``) as this worker kept it, for a request whose first statement
    re-checks it before writing (:mod:`calltrack.numbers.dni.pools`)."""
    pool = cached_pool_settings(key) if kept else pool_settings(key)
    if pool is None:
        raise Http404(f"No enabled number pool with key '{key}'.")
    return pool


def _origin_allowed(request: HttpRequest, origin: str | None, pool: PoolSettings) -> bool:
    """Browsers send Origin on cross-site requests; only the pool's origins (and our own site) may assign."""
    if origin is None:
        return True
    origin = origin.rstrip("/")
    return origin in pool.origins or origin == _own_origin(request)


def _origin_refusal(origin: str | None, pool: PoolSettings) -> JsonResponse:
    return _error(403, f"Origin {origin} is not allowed for pool '{pool.key}'; add it to the pool's allowed origins.")


@lru_cache(maxsize=65536)
def _parts(e164: str) -> tuple[str, str]:
    parsed = phonenumbers.parse(e164)
    return phonenumbers.national_significant_number(parsed), str(parsed.country_code)


def _assignment_json(assignment: Assignment) -> dict[str, Any]:
    """The tag's answer: the number in E.164, as the page wrote its own, and in parts for the tag's own formatting."""
    national, country = _parts(assignment.number) if assignment.number else ("", "")
    return {
        "number": assignment.number,
        "formatted": assignment.formatted,
        "national": national,
        "country_code": country,
        "session_id": assignment.session_id,
        "visitor_id": assignment.visitor_id,
        "expires_at": assignment.expires_at.isoformat().replace("+00:00", "Z"),
        "overflow": assignment.overflow,
    }


def _handle(request: HttpRequest, work) -> HttpResponse:
    try:
        return _handle_request(request, work)
    except DatabaseError:
        # The database is down or overloaded: a JSON answer the tag can read (CORS headers included, for the
        # caller's origin: nothing of the pool is known), so the page keeps its own number and retries later.
        logger.exception("DNI %s: database unavailable", request.path)
        response = _error(503, "Temporarily unavailable; try again shortly.")
        response["Retry-After"] = "30"
        return _cors(response, request.headers.get("Origin"))


def _handle_request(request: HttpRequest, work) -> HttpResponse:
    origin = request.headers.get("Origin")
    if request.method == "OPTIONS":
        return _preflight(request)
    if request.method != "POST":
        response = _error(405, "Use POST with a JSON body.")
        response["Allow"] = "POST, OPTIONS"
        return response
    cors_origin = None
    try:
        limited = _rate_limited(scope="ip", key=client_key(request), setting="CALLTRACK_DNI_RATE_LIMIT_IP", who="this IP address")
        if limited:
            return _cors(limited, origin)
        data = _json_body(request)
        key, visitor_id = _pool_key(data), _visitor_id(data)
        limited = _rate_limited(scope="visitor", key=visitor_id, setting="CALLTRACK_DNI_RATE_LIMIT_VISITOR", who="this visitor")
        if limited:
            return _cors(limited, origin)
        # A browser's request (Origin) makes a statement that re-checks the pool this worker kept before it writes
        # anything; any other answer (no Origin: a script; a refused origin) is decided on the pool read now.
        # Custom parameters are counted on the pool before that statement: their requests read the pool now too.
        pool = _pool(key, kept=origin is not None and not data.get("custom"))
        allowed = _origin_allowed(request, origin, pool)
        if pool.version and not allowed:
            pool = _pool(key)
            allowed = _origin_allowed(request, origin, pool)
        if not allowed:
            return _cors(_origin_refusal(origin, pool), None)
        cors_origin = origin
        try:
            response = work(request, data, pool, visitor_id)
        except StalePool:
            # The pool changed since this worker read it (nothing was written): again with the pool read now.
            forget_pool_settings(key)
            pool = _pool(key)
            if not _origin_allowed(request, origin, pool):
                return _cors(_origin_refusal(origin, pool), None)
            response = work(request, data, pool, visitor_id)
    except BadRequest as exc:
        response = _error(400, f"{exc.field}: {exc.reason}.", field=exc.field)
    except Http404 as exc:
        response = _error(404, str(exc))
    return _cors(response, cors_origin)


def _ip_or_none(value: str) -> str | None:
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return None


def _new_sessions_admit(pool: PoolSettings, client: str):
    """The per-client, per-pool limit of *new* sessions (CALLTRACK_DNI_NEW_SESSIONS_PER_IP), counted in the shared
    cache only when the visit would open one: a returning visitor's page views never use it up. ``client`` is
    :func:`calltrack.middleware.client_key` (an IPv6 address counts with its whole /64)."""

    def admit() -> bool:
        rate = ratelimit.parse_rate(settings.CALLTRACK_DNI_NEW_SESSIONS_PER_IP, setting="CALLTRACK_DNI_NEW_SESSIONS_PER_IP")
        if ratelimit.hit(scope=f"dni:new:{pool.pk}", key=client, rate=rate).allowed:
            return True
        logger.info("pool %s: new session refused to %r (CALLTRACK_DNI_NEW_SESSIONS_PER_IP); fallback number", pool.key, client)
        return False

    return admit


def _do_assign(request: HttpRequest, data: dict[str, Any], pool: PoolSettings, visitor_id: str) -> HttpResponse:
    destination, destination_text = _destination(data)
    if request.headers.get("Origin") is None:
        # Browsers send Origin with every POST (same-site too); without one the caller is a script or a bot. It
        # gets the pool's fallback number and no session, so it can neither hold a number nor take one over.
        visit = Visit(visitor_id=visitor_id, destination=destination, destination_text=destination_text)
        return JsonResponse(_assignment_json(fallback_assignment(pool=pool, visit=visit)))
    ip = client_ip(request)
    visit = Visit(
        visitor_id=visitor_id,
        page_url=_url(data, "page_url"),
        referrer=_url(data, "referrer"),
        # Custom parameters the pool accepts join the marketing data: a call carries them as tags.
        marketing_data={**_marketing(data), **parameters.custom_parameters_accept(pool_id=pool.pk, sent=_custom(data))},
        destination=destination,
        destination_text=destination_text,
        ip_address=_ip_or_none(ip),
        may_open=_new_sessions_admit(pool, address_group(ip, settings.CALLTRACK_IPV6_PREFIX)),
    )
    return JsonResponse(_assignment_json(number_assign(pool=pool, visit=visit)))


def _do_heartbeat(request: HttpRequest, data: dict[str, Any], pool: PoolSettings, visitor_id: str) -> HttpResponse:
    session_id = data.get("session_id")
    if isinstance(session_id, str) and session_id.isascii() and session_id.isdigit() and len(session_id) <= 19:
        session_id = int(session_id)
    if not isinstance(session_id, int) or isinstance(session_id, bool) or not 0 < session_id < 2**63:
        raise BadRequest("session_id", "must be the session_id the assign answer gave")
    assignment = session_heartbeat(pool=pool, visitor_id=visitor_id, session_id=session_id)
    if assignment is None:
        return _error(410, "This session has ended; ask /dni/v1/assign for a number again.")
    return JsonResponse(_assignment_json(assignment))


@csrf_exempt
def assign(request: HttpRequest) -> HttpResponse:
    """POST /dni/v1/assign: the number this visitor sees on this page (JSON in, JSON out)."""
    return _handle(request, _do_assign)


@csrf_exempt
def heartbeat(request: HttpRequest) -> HttpResponse:
    """POST /dni/v1/heartbeat: the page is still open; extend the session (410 when it has ended)."""
    return _handle(request, _do_heartbeat)


def demo(request: HttpRequest) -> HttpResponse:
    """A landing page using the tag on ``?pool=<key>`` (``demo`` by default); off unless CALLTRACK_DNI_DEMO."""
    if not settings.CALLTRACK_DNI_DEMO:
        raise Http404("The DNI demo page is off (CALLTRACK_DNI_DEMO).")
    key = request.GET.get("pool", "demo")
    if not POOL_NAME.match(key):
        key = "demo"
    return render(request, "numbers/dni_demo.html", {"pool_key": key, "api_base": _own_origin(request)})
