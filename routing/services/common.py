"""Shared pieces of voice routing: webhook parameters, callback URLs, Twilio status maps, stored answers."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from django.core import signing

from calltrack import phone
from routing import twiml
from routing.store.voice import MAX_CALL_SECONDS as MAX_CALL_SECONDS
from tracking.call_state import TestOptions as CallStateTest
from tracking.models import (
    AttemptStatus,
    Attestation,
    CallStatus,
    Campaign,
    GreetingKind,
)

TWILIO_DIAL_STATUS = {
    "completed": AttemptStatus.COMPLETED, "answered": AttemptStatus.COMPLETED, "busy": AttemptStatus.BUSY,
    "no-answer": AttemptStatus.NO_ANSWER, "failed": AttemptStatus.FAILED, "canceled": AttemptStatus.CANCELED,
}
TWILIO_CALL_STATUS = {
    "queued": CallStatus.RINGING, "initiated": CallStatus.RINGING, "ringing": CallStatus.RINGING,
    "in-progress": CallStatus.IN_PROGRESS, "completed": CallStatus.COMPLETED, "busy": CallStatus.BUSY,
    "no-answer": CallStatus.NO_ANSWER, "failed": CallStatus.FAILED, "canceled": CallStatus.CANCELED,
}
_STATUS_RANK = {CallStatus.RINGING: 0, CallStatus.IN_PROGRESS: 1}


# Twilio ends every call within 24 hours: a longer reported duration is garbage (and may not fit the column).
MAX_REPORTED_SECONDS = 24 * 3600


def duration_seconds(raw: str | None) -> int:
    """A duration Twilio reports (CallDuration, DialCallDuration): ASCII digits, at most MAX_REPORTED_SECONDS; anything
    else reads 0. Never raises, so a garbled duration cannot cost the call the final status it came with."""
    digits = (raw or "").strip()
    if not (digits.isascii() and digits.isdigit()):
        return 0
    digits = digits.lstrip("0") or "0"
    return MAX_REPORTED_SECONDS if len(digits) > 6 else min(int(digits), MAX_REPORTED_SECONDS)


log = logging.getLogger("calltrack.routing")

# A test call (the admin's "Test call", ``simulate_call --test``) says so in a parameter of its signed
# ``/voice/incoming`` request: a token signed with SECRET_KEY for that CallSid, carrying the operator's options.
# Twilio never sends it, and nobody without SECRET_KEY can make one: a real call cannot pass itself off as a test.
# Twilio's STIR/SHAKEN verification of the caller's number (``StirVerstat`` on an incoming call), as a test call may send it.
STIR_VERSTATS = (
    "TN-Validation-Passed-A", "TN-Validation-Passed-B", "TN-Validation-Passed-C",
    "TN-Validation-Failed-A", "TN-Validation-Failed-B", "TN-Validation-Failed-C", "TN-Validation-Failed",
    "No-TN-Validation",
)

TEST_CALL_PARAM = "CalltrackTestCall"
_TEST_CALL_SALT = "calltrack.routing.test-call"
TEST_CALL_MAX_AGE = 3600  # seconds a token stays good: the simulator posts it at once


@dataclass(frozen=True)
class TestCallOptions:
    """What the operator chose for a test call: the webhooks sent or not, and the moment its routing reads
    business and tagging hours at (None: now)."""

    __test__ = False  # not a pytest test class

    send_webhooks: bool = False
    clock: datetime | None = None

    def state(self) -> CallStateTest:
        """As the call's routing state keeps them (``CallState.test``, read by ``Call.test_clock`` and ``Call.test_sends_webhooks``)."""
        return CallStateTest(webhooks=self.send_webhooks, clock=self.clock)

    def as_json(self) -> dict[str, Any]:
        """As the signed marker carries them."""
        return {"webhooks": self.send_webhooks, "clock": self.clock.isoformat() if self.clock else None}


def call_test_marker(*, call_sid: str, options: TestCallOptions) -> str:
    """The ``TEST_CALL_PARAM`` value that marks the incoming call ``call_sid`` as a test with ``options``."""
    return signing.dumps({"sid": call_sid, **options.as_json()}, salt=_TEST_CALL_SALT, compress=False)


def test_call_options_read(params: Mapping[str, str]) -> TestCallOptions | None:
    """The options of a test call's request (``TEST_CALL_PARAM`` for its CallSid), None for any other request."""
    marker = params.get(TEST_CALL_PARAM)
    return _test_call_options(marker, (params.get("CallSid") or "").strip()) if marker else None


test_call_options_read.__test__ = False  # type: ignore[attr-defined]  # not a pytest test


def _test_call_options(token: str, call_sid: str) -> TestCallOptions | None:
    """The options in a test call token for ``call_sid``; None (and a warning) for a token that is not ours,
    expired, or made for another call: such a call is routed as the real call it then is."""
    try:
        data = signing.loads(token, salt=_TEST_CALL_SALT, max_age=TEST_CALL_MAX_AGE)
        if not isinstance(data, dict) or data.get("sid") != call_sid:
            raise signing.BadSignature("made for another call")
        clock = datetime.fromisoformat(data["clock"]) if data.get("clock") else None
        if clock is not None and clock.tzinfo is None:
            raise signing.BadSignature("clock without a time zone")
    except (signing.BadSignature, ValueError, TypeError, KeyError) as exc:
        log.warning("CallSid %r: ignored a test call marker (%s)", call_sid, exc)
        return None
    return TestCallOptions(send_webhooks=bool(data.get("webhooks")), clock=clock)


# Twilio's StirVerstat values (its "Trusted Calling with SHAKEN/STIR" docs): TN-Validation-Passed-A/-B/-C,
# TN-Validation-Failed-A/-B/-C (or without the letter), No-TN-Validation. Carriers that send the older
# TN-Validation-Passed without a letter mean attestation A. Read in any case; anything else is "not reported".
_VERSTAT_PASSED = {"a": Attestation.PASSED_A, "b": Attestation.PASSED_B, "c": Attestation.PASSED_C, "": Attestation.PASSED_A}
CALLER_NAME_MAX = 64


def attestation_read(raw: str | None) -> str:
    """The attestation (``tracking.models.Attestation``) that Twilio's ``StirVerstat`` value reports. Never raises:
    a value we do not know reads as not reported ('')."""
    value = (raw or "").strip().lower()
    if not value or len(value) > 40:
        return Attestation.UNKNOWN
    if value == "no-tn-validation":
        return Attestation.NONE
    if value.startswith("tn-validation-failed"):
        return Attestation.FAILED
    if value.startswith("tn-validation-passed"):
        return _VERSTAT_PASSED.get(value.removeprefix("tn-validation-passed").lstrip("-"), Attestation.UNKNOWN)
    return Attestation.UNKNOWN


def caller_name_read(raw: str | None) -> str:
    """The caller name Twilio's caller name lookup gave (``CallerName``: "JOHN SMITH", "SPAM LIKELY"), as text we
    keep: control characters, NULs and lone surrogates dropped, spaces collapsed, at most 64 characters."""
    text = "".join(ch if ch.isprintable() else " " for ch in (raw or "")[:4 * CALLER_NAME_MAX])
    return " ".join(text.split())[:CALLER_NAME_MAX].strip()


class ParamError(ValueError):
    """A webhook parameter is missing or unreadable (the view answers with the fail-safe)."""


@dataclass(frozen=True)
class IncomingCall:
    """The parameters of Twilio's ``/voice/incoming`` request we use."""

    call_sid: str
    caller: str
    called: str
    from_city: str = ""
    from_state: str = ""
    from_zip: str = ""
    from_country: str = ""
    attestation: str = ""  # StirVerstat, read (``attestation_read``)
    caller_name: str = ""  # CallerName, cleaned (``caller_name_read``)
    test: TestCallOptions | None = None  # a test call (``TEST_CALL_PARAM``, ``call_test_marker``): its options

    @classmethod
    def from_params(cls, params: Mapping[str, str]) -> IncomingCall:
        sid = (params.get("CallSid") or "").strip()
        to = (params.get("To") or "").strip()
        caller = (params.get("From") or "").strip()
        missing = [name for name, value in (("CallSid", sid), ("To", to), ("From", caller)) if not value]
        if missing:
            raise ParamError(f"missing parameter {', '.join(missing)}")
        if len(sid) > 64:
            raise ParamError("CallSid is longer than 64 characters")
        try:
            called = phone.to_e164(to)
        except phone.InvalidPhoneNumber as exc:
            raise ParamError(f"To: {exc}") from None
        caller = phone.to_e164_or_none(caller) or caller[:32]
        marker = params.get(TEST_CALL_PARAM)
        return cls(
            call_sid=sid, caller=caller, called=called,
            from_city=params.get("FromCity", "")[:100], from_state=params.get("FromState", "")[:100],
            from_zip=params.get("FromZip", "")[:20], from_country=params.get("FromCountry", "")[:2],
            attestation=attestation_read(params.get("StirVerstat")), caller_name=caller_name_read(params.get("CallerName")),
            test=_test_call_options(marker, sid) if marker else None,
        )


@dataclass(frozen=True)
class Links:
    """Builds the absolute URLs written into our TwiML (Twilio signs and calls them back)."""

    base: str

    def url(self, path: str, **query: Any) -> str:
        return f"{self.base}{path}" + (f"?{urlencode(query)}" if query else "")


# --- Reads ------------------------------------------------------------------------------------------------


def is_real_number(value: str) -> bool:
    """A real, valid E.164 number (not 'anonymous', 'Restricted' or Twilio's +266696687 for a withheld number)."""
    return bool(value) and phone.to_e164_or_none(value) == value


def campaign_voice(campaign: Campaign | None) -> twiml.Voice:
    if campaign is None:
        return twiml.Voice()
    return twiml.Voice(campaign.greeting_voice, campaign.greeting_language)


def campaign_greeting(campaign: Campaign) -> twiml.Greeting | None:
    if campaign.greeting_kind == GreetingKind.NONE:
        return None
    return twiml.Greeting(campaign.greeting_kind, campaign.greeting_text, campaign.greeting_url, campaign_voice(campaign))
