"""The ``twilio`` carrier, through the official SDK.

Numbers: ``AvailablePhoneNumbers`` (search), ``IncomingPhoneNumbers`` (buy with
``VoiceUrl`` = /voice/incoming, ``StatusCallback`` = /voice/status and
``VoiceFallbackUrl`` = /voice/fallback, update, delete). Recordings: the media
is read with the account's credentials (they never leave the server) and
deleted through the ``Recordings`` resource. Porting in: the Numbers v1 ``Porting/PortIn`` API. Twilio has no
port-out API (the gaining carrier starts it with the account's PIN); a port
out is complete once the number has left the account (its IncomingPhoneNumber
is gone).

Twilio's errors become :class:`CarrierError` sentences (number taken, bad
credentials, rate limit, ...). Tests pass an ``http_client`` that records
requests instead of sending them; nothing here touches the network on its own.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import requests
from django.conf import settings
from twilio.base.exceptions import TwilioException, TwilioRestException, TwilioServiceException
from twilio.http import HttpClient
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client
from twilio.rest.numbers.v1.porting_port_in import PortingPortInList

from calltrack.numbers.providers.base import (
    AvailableNumber,
    CallerLookupResult,
    CarrierError,
    ClosingChunks,
    PortStatusResult,
    PurchasedNumber,
    RecordingAudio,
)

# https://www.twilio.com/docs/api/errors
_ERRORS: dict[int, tuple[str, str]] = {
    20003: ("auth", "Twilio refused the credentials (TWILIO_ACCOUNT_SID / TWILIO_AUTH_TOKEN): {msg}"),
    20404: ("not_found", "Twilio does not know this resource: {msg}"),
    20429: ("rate_limited", "Twilio is rate limiting us; try again in a minute: {msg}"),
    21421: ("invalid", "Twilio says the phone number is invalid: {msg}"),
    21422: ("unavailable", "The number is no longer available to buy at Twilio: {msg}"),
    21452: ("unavailable", "Twilio has no numbers left in this area code: {msg}"),
}

# Port-in statuses as the Numbers v1 API reports them, in our words.
_PORT_DONE = {"completed"}
_PORT_FAILED = {"canceled", "cancelled", "expired", "rejected"}
_RECORDING_SID = re.compile(r"^RE[0-9a-fA-F]{32}$")
MEDIA_BASE = "https://api.twilio.com/2010-04-01/Accounts/{account}/Recordings/{sid}.mp3"
MEDIA_TIMEOUT = (5, 30)  # seconds to connect, seconds between bytes
TEXT_FIND_LIMIT = 50  # messages of one line a find reads (a retry looks back minutes, not days)
# Our lookup fields, as Lookup v2 names its data packages.
_LOOKUP_FIELDS = {"caller_name": "caller_name", "line_type": "line_type_intelligence"}


def _clean(msg: str) -> str:
    return re.sub(r"^HTTP \d+ error: ", "", msg or "").strip() or "no details"


def carrier_error(exc: TwilioException) -> CarrierError:
    """Turn an SDK exception into a sentence for the operator."""
    if isinstance(exc, TwilioRestException | TwilioServiceException):
        msg = _clean(getattr(exc, "msg", "") or getattr(exc, "detail", "") or getattr(exc, "title", ""))
        status, code = exc.status, exc.code
        if code in _ERRORS:
            kind, template = _ERRORS[code]
            return CarrierError(template.format(msg=msg), code=kind)
        if status == 401:
            return CarrierError(_ERRORS[20003][1].format(msg=msg), code="auth")
        if status == 429:
            return CarrierError(_ERRORS[20429][1].format(msg=msg), code="rate_limited")
        if status == 404:
            return CarrierError(_ERRORS[20404][1].format(msg=msg), code="not_found")
        return CarrierError(f"Twilio answered {status} (error {code}): {msg}", code="failed")
    return CarrierError(f"Twilio failed: {exc}", code="failed")


def _split_address(text: str) -> dict[str, str]:
    """'1 Main St\\nSpringfield, IL 62701' -> the address object Porting/PortIn wants."""
    lines = [part.strip() for part in re.split(r"[\n;]", text) if part.strip()]
    address = {"street": lines[0] if lines else text.strip(), "street_2": "", "city": "", "state": "", "zip": "", "country": "US"}
    if len(lines) > 1:
        match = re.match(r"^(?P<city>[^,]+),\s*(?P<state>[A-Za-z]{2})\s+(?P<zip>[\d-]{5,10})$", lines[-1])
        if match:
            address.update(match.groupdict())
            if len(lines) > 2:
                address["street_2"] = ", ".join(lines[1:-1])
        else:
            address["street_2"] = ", ".join(lines[1:])
    return address


def _fallback(url: str) -> dict[str, str]:
    """Twilio requests ``VoiceFallbackUrl`` when the voice URL fails (an error, a timeout, invalid TwiML)."""
    return {"voice_fallback_url": url, "voice_fallback_method": "POST"} if url else {}


def _sms(url: str) -> dict[str, str]:
    """The number's messaging webhook (``SmsUrl``), when we have one to set."""
    return {"sms_url": url, "sms_method": "POST"} if url else {}


def _recording_sid(sid: str) -> str:
    if not _RECORDING_SID.match(sid or ""):
        raise CarrierError(f"{sid!r} is not a Twilio recording SID.", code="invalid")
    return sid


class TwilioCarrier:
    name = "twilio"

    def __init__(
        self, *, account_sid: str, auth_token: str, http_client: HttpClient | None = None, media_session: requests.Session | None = None,
    ) -> None:
        if not (account_sid and auth_token):
            raise CarrierError("The twilio carrier needs TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN.", code="auth")
        self.account_sid = account_sid
        self._auth = (account_sid, auth_token)
        self.client = Client(account_sid, auth_token, http_client=http_client)
        self._http_client = http_client
        # Recording media is streamed with requests (the SDK's HttpClient reads whole bodies); tests pass a fake.
        self.media_session = media_session

    @classmethod
    def from_settings(cls, *, http_client: HttpClient | None = None, media_session: requests.Session | None = None) -> TwilioCarrier:
        return cls(account_sid=settings.TWILIO_ACCOUNT_SID, auth_token=settings.TWILIO_AUTH_TOKEN, http_client=http_client,
                   media_session=media_session)

    def _call(self, func, *args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except TwilioException as exc:
            raise carrier_error(exc) from exc

    def search(
        self, *, country: str = "US", number_type: str = "local", area_code: str = "", contains: str = "",
        near_number: str = "", limit: int = 20,
    ) -> list[AvailableNumber]:
        country_numbers = self.client.api.v2010.account.available_phone_numbers(country.upper())
        listing = country_numbers.toll_free if number_type == "toll_free" else country_numbers.local
        if number_type == "mobile":
            listing = country_numbers.mobile
        options: dict[str, Any] = {"voice_enabled": True, "limit": limit}
        if area_code:
            if not area_code.isdigit():
                raise CarrierError(f"'{area_code}' is not an area code (digits only).", code="invalid")
            options["area_code"] = int(area_code)
        if contains:
            options["contains"] = contains
        if near_number:
            options["near_number"] = near_number
        found = self._call(listing.list, **options)
        kind = "toll_free" if number_type == "toll_free" else number_type
        return [
            AvailableNumber(
                number=item.phone_number, number_type=kind,
                area_code=item.phone_number[2:5] if item.phone_number.startswith("+1") else "",
                region=item.region or "", locality=item.locality or "",
            )
            for item in found
        ]

    def buy(self, *, number: str, voice_url: str, status_url: str, fallback_url: str = "", sms_url: str = "") -> PurchasedNumber:
        created = self._call(
            self.client.api.v2010.account.incoming_phone_numbers.create,
            phone_number=number, voice_url=voice_url, voice_method="POST",
            status_callback=status_url, status_callback_method="POST", **_fallback(fallback_url), **_sms(sms_url),
        )
        return PurchasedNumber(number=created.phone_number, carrier_id=created.sid)

    def configure(self, *, number: str, carrier_id: str, voice_url: str, status_url: str, fallback_url: str = "", sms_url: str = "") -> None:
        sid = carrier_id or self._sid_for(number)
        self._call(
            self.client.api.v2010.account.incoming_phone_numbers(sid).update,
            voice_url=voice_url, voice_method="POST", status_callback=status_url, status_callback_method="POST",
            **_fallback(fallback_url), **_sms(sms_url),
        )

    def text_send(self, *, to: str, from_number: str, body: str, media_urls: list[str], status_url: str) -> str:
        """Messages API (``POST /2010-04-01/Accounts/{sid}/Messages.json``) with our status callback."""
        options: dict[str, Any] = {"to": to, "from_": from_number, "body": body, "status_callback": status_url}
        if media_urls:
            options["media_url"] = list(media_urls)
        message = self._call(self.client.api.v2010.account.messages.create, **options)
        return message.sid

    def text_sent_find(self, *, to: str, from_number: str, body: str, status_url: str, since: datetime) -> list[str]:
        """Messages API list (``To``, ``From``, ``DateSent>=``), matched on the body: Twilio does not return a
        message's status callback, so two texts with the same body on the same line since ``since`` cannot be told
        apart (the caller skips the sids it holds already). A message still queued at Twilio may have no DateSent
        yet and is then not listed."""
        messages = self._call(self.client.api.v2010.account.messages.list, to=to, from_=from_number, date_sent_after=since,
                              limit=TEXT_FIND_LIMIT)
        return [m.sid for m in messages if (m.body or "") == body and (m.direction or "").startswith("outbound")]

    def _sid_for(self, number: str) -> str:
        found = self._call(self.client.api.v2010.account.incoming_phone_numbers.list, phone_number=number, limit=1)
        if not found:
            raise CarrierError(f"{number} is not a number on the Twilio account.", code="not_found")
        return found[0].sid

    def release(self, *, number: str, carrier_id: str) -> None:
        try:
            sid = carrier_id or self._sid_for(number)
            self._call(self.client.api.v2010.account.incoming_phone_numbers(sid).delete)
        except CarrierError as exc:
            if exc.code != "not_found":  # already gone: releasing is done
                raise

    def port_in_start(self, *, numbers: list[str], loa_name: str, loa_address: str, losing_carrier: str = "") -> str:
        request = PortingPortInList.NumbersV1PortingPortInCreate({
            "account_sid": self.account_sid,
            "phone_numbers": [{"phone_number": n} for n in numbers],
            "losing_carrier_information": {
                "customer_name": loa_name,
                "authorized_representative": loa_name,
                "customer_type": "Business",
                "address": _split_address(loa_address),
            },
        })
        created = self._call(self.client.numbers.v1.porting_port_ins.create, request)
        return created.port_in_request_sid

    def port_in_status(self, *, request_id: str) -> PortStatusResult:
        fetched = self._call(self.client.numbers.v1.porting_port_ins(request_id).fetch)
        state = (fetched.port_in_request_status or "").strip().lower().replace("_", " ")
        numbers = [item.get("phone_number", "") if isinstance(item, dict) else str(item) for item in fetched.phone_numbers or []]
        if state in _PORT_DONE:
            return PortStatusResult(status="completed", numbers=numbers)
        if state in _PORT_FAILED:
            reason = fetched.order_cancellation_reason or f"Twilio marked the port-in {state}."
            return PortStatusResult(status="rejected", reason=reason, numbers=numbers)
        return PortStatusResult(status="submitted", reason=state, numbers=numbers)

    def port_out_start(self, *, number: str, carrier_id: str, to_carrier: str) -> str:
        # Twilio has no API to start a port out; check the number is ours so the operator can give the PIN.
        return carrier_id or self._sid_for(number)

    def port_out_status(self, *, number: str, carrier_id: str) -> PortStatusResult:
        found = self._call(self.client.api.v2010.account.incoming_phone_numbers.list, phone_number=number, limit=1)
        if found:
            return PortStatusResult(status="submitted", numbers=[number])
        return PortStatusResult(status="completed", numbers=[number])

    def recording_open(self, *, recording_sid: str) -> RecordingAudio:
        """The recording's MP3, streamed from Twilio with the account's credentials. The URL is built from our
        account and the SID (never a URL from a request), so nothing else is ever fetched with them."""
        url = MEDIA_BASE.format(account=self.account_sid, sid=_recording_sid(recording_sid))
        session = self.media_session or requests.Session()
        try:
            response = session.get(url, auth=self._auth, stream=True, timeout=MEDIA_TIMEOUT)
        except requests.RequestException as exc:
            raise CarrierError(f"Twilio did not answer for recording {recording_sid}: {exc}", code="failed") from exc
        if response.status_code != 200:
            response.close()
            if response.status_code == 404:
                raise CarrierError(f"Twilio has no recording {recording_sid} (deleted?).", code="not_found")
            if response.status_code in (401, 403):
                raise CarrierError(_ERRORS[20003][1].format(msg=f"HTTP {response.status_code}"), code="auth")
            raise CarrierError(f"Twilio answered {response.status_code} for recording {recording_sid}.", code="failed")
        size = response.headers.get("Content-Length")

        return RecordingAudio(chunks=ClosingChunks(response.iter_content(64 * 1024), response.close), content_type="audio/mpeg", size=int(size) if size and size.isdigit() else None)

    def queue_dial(self, *, to: str, caller_id: str, twiml: str, status_url: str, timeout: int) -> str:
        call = self._call(
            self.client.api.v2010.account.calls.create, to=to, from_=caller_id, twiml=twiml, timeout=timeout,
            status_callback=status_url, status_callback_method="POST", status_callback_event=["answered", "completed"],
        )
        return call.sid

    def caller_lookup(self, *, number: str, fields: tuple[str, ...], timeout: float) -> CallerLookupResult:
        """Lookup v2 (``GET https://lookups.twilio.com/v2/PhoneNumbers/{number}?Fields=...``): ``caller_name`` (CNAM,
        US numbers) and ``line_type_intelligence``. Each package is billed per request. The request gets its own
        HTTP client with ``timeout`` (the call waits for it), unless one was given (tests)."""
        wanted = [_LOOKUP_FIELDS[f] for f in fields if f in _LOOKUP_FIELDS]
        if not wanted:
            return CallerLookupResult()
        client = self.client if self._http_client is not None else Client(
            self._auth[0], self._auth[1], http_client=TwilioHttpClient(timeout=timeout))
        try:
            found = self._call(client.lookups.v2.phone_numbers(number).fetch, fields=",".join(wanted))
        except requests.RequestException as exc:  # the SDK's HTTP client lets timeouts and connection errors through
            raise CarrierError(f"Twilio Lookup did not answer for {number}: {exc}", code="unavailable") from exc
        name = found.caller_name if isinstance(found.caller_name, dict) else {}
        line = found.line_type_intelligence if isinstance(found.line_type_intelligence, dict) else {}
        return CallerLookupResult(
            caller_name=str(name.get("caller_name") or "")[:100], caller_type=str(name.get("caller_type") or "")[:20],
            line_type=str(line.get("type") or "")[:20], carrier_name=str(line.get("carrier_name") or "")[:100],
        )

    def recording_delete(self, *, recording_sid: str) -> None:
        try:
            self._call(self.client.api.v2010.account.recordings(_recording_sid(recording_sid)).delete)
        except CarrierError as exc:
            if exc.code != "not_found":  # already gone: deleting is done
                raise
