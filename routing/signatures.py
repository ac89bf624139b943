"""Which Twilio account signed a webhook: the install's, or an account's Twilio subaccount.

Twilio signs each webhook (``X-Twilio-Signature``) with the auth token of the Twilio account that holds the number:
the install's (TWILIO_AUTH_TOKEN) or, for the numbers of a calltrack account with a subaccount of its own
(``Account.twilio_account_sid``/``twilio_auth_token``), that subaccount's. Every Twilio webhook names the account in
its ``AccountSid`` parameter, and the signature covers it.

- The install's token is tried first: the install's numbers (every number of a single-account install) cost no
  statement, as before.
- Only when it fails, the token of the subaccount the request's ``AccountSid`` names: read from a map of the
  accounts' subaccounts kept in this process (one statement loads it, at most every ``MAP_SECONDS``, or again after
  a failure when it is older than ``RELOAD_SECONDS``, so a rotated token works at once and forged requests cannot
  make every request a statement). A database that fails leaves the map as it was (the voice fallback URL's check
  still works for an account this process has seen).
- A request accepted with a subaccount's token is bound to that calltrack account (:func:`signed_account_id`), and
  :func:`owner_check` is the one rule for every row such a request names: a number, a call found by ``?call=``, by
  ``CallSid`` (the status callback, a queue's dequeued caller) or by a leg's id (a leg's status, its whisper), a text
  (the voice views check through their unit of work, ``Turn.owned``): a client that knows its own subaccount's
  token cannot act on another client's calls or texts.

Tokens are never logged: a refusal names the path and the SID, never a token.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import threading
import time

from django.conf import settings
from django.http import HttpRequest, QueryDict
from twilio.request_validator import RequestValidator

log = logging.getLogger("calltrack.routing")

MAP_SECONDS = 300.0
RELOAD_SECONDS = 10.0
_ATTRIBUTE = "_calltrack_signed_account"


class _SubaccountMap:
    """AccountSid -> (calltrack account id, auth token) of the accounts with a Twilio subaccount."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tokens: dict[str, tuple[int, str]] = {}
        self._loaded_at: float | None = None

    def get(self, account_sid: str, *, after_failure: bool) -> tuple[int, str] | None:
        now = time.monotonic()
        age = None if self._loaded_at is None else now - self._loaded_at
        if age is None or age >= MAP_SECONDS or (after_failure and age >= RELOAD_SECONDS):
            self._load(now)
        return self._tokens.get(account_sid)

    def _load(self, now: float) -> None:
        from calltrack.models import Account

        try:
            rows = list(Account.objects.exclude(twilio_account_sid="").exclude(twilio_auth_token="")
                        .values_list("twilio_account_sid", "pk", "twilio_auth_token"))
        except Exception:  # noqa: BLE001 - a database that fails must not fail the signature check: keep the map we have
            log.warning("cannot read the accounts' Twilio subaccounts; keeping the ones known", exc_info=True)
            with self._lock:
                self._loaded_at = now  # tried: not again before RELOAD_SECONDS
            return
        with self._lock:
            self._tokens = {sid: (pk, token) for sid, pk, token in rows}
            self._loaded_at = now

    def forget(self) -> None:
        with self._lock:
            self._tokens, self._loaded_at = {}, None


SUBACCOUNTS = _SubaccountMap()


def subaccounts_forget() -> None:
    """An account's Twilio subaccount changed: this process reads the map again at its next use (other processes
    within ``RELOAD_SECONDS`` of a refused webhook, or ``MAP_SECONDS``)."""
    SUBACCOUNTS.forget()


def signature_valid(request: HttpRequest, url: str) -> bool:
    """Whether ``request`` (to ``url``, exactly as Twilio called it) carries Twilio's signature, by the install's
    token or by the token of the subaccount its ``AccountSid`` names. In the latter case the request is bound to
    that subaccount's calltrack account (:func:`signed_account_id`)."""
    setattr(request, _ATTRIBUTE, None)
    if not settings.CALLTRACK_VALIDATE_TWILIO_SIGNATURE:
        return True
    signature = request.META.get("HTTP_X_TWILIO_SIGNATURE", "")
    if not signature:
        return False
    params = request.POST if request.method == "POST" else QueryDict()
    token = settings.TWILIO_AUTH_TOKEN
    if token and _matches(token, url, params, signature):
        return True
    account_sid = (request.POST.get("AccountSid") or request.GET.get("AccountSid") or "").strip()
    if not (len(account_sid) == 34 and account_sid.startswith("AC") and account_sid.isalnum()) or account_sid == settings.TWILIO_ACCOUNT_SID:
        return False
    for after_failure in (False, True):
        found = SUBACCOUNTS.get(account_sid, after_failure=after_failure)
        if found is not None and _matches(found[1], url, params, signature):
            setattr(request, _ATTRIBUTE, found[0])
            return True
    return False


class OtherAccount(Exception):
    """A webhook signed by one account's Twilio subaccount names a number, call or text of another account."""


def owner_check(signed_account: int | None, account_id: int | None) -> None:
    """Refuse (:class:`OtherAccount`) a request signed by the subaccount of ``signed_account`` about a row of account
    ``account_id``. A request the install's token signed (None) may name any account's row; a row of no account (a
    call to a number no account holds) is answered as always (the fail-safe)."""
    if signed_account is not None and account_id is not None and account_id != signed_account:
        raise OtherAccount(f"signed by the Twilio subaccount of account {signed_account}, about a row of account {account_id}")


def signed_account_id(request: HttpRequest) -> int | None:
    """The calltrack account whose Twilio subaccount signed ``request``; None: the install's token (any account's
    number may be in the install's Twilio account) or no check."""
    return getattr(request, _ATTRIBUTE, None)


def _matches(token: str, url: str, params: QueryDict, signature: str) -> bool:
    # Fast path: the URL exactly as Twilio called it (one HMAC). Otherwise Twilio's validator, which also tries
    # the URL with and without the default port and checks a bodySHA256 query parameter.
    if "bodySHA256" not in url and hmac.compare_digest(signature_compute(token, url, params), signature):
        return True
    return RequestValidator(token).validate(url, params, signature)


def signature_compute(token: str, url: str, params: QueryDict) -> str:
    """Twilio's X-Twilio-Signature: base64 HMAC-SHA1 of the URL followed by each parameter name and value,
    names sorted, each name's distinct values sorted."""
    payload = url + "".join(name + value for name in sorted(set(params)) for value in sorted(set(params.getlist(name))))
    return base64.b64encode(hmac.new(token.encode(), payload.encode(), hashlib.sha1).digest()).decode()
