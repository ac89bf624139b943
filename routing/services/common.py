"""Shared pieces of voice routing: webhook parameters, callback URLs, Twilio status maps, stored answers."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from calltrack import phone
from routing import twiml
from tracking.models import (
    AttemptStatus,
    Call,
    CallStatus,
    Campaign,
    GreetingKind,
)
from tracking.services.call_events import call_fields_save_with_steps

MAX_CALL_SECONDS = 4 * 3600  # Twilio's default <Dial timeLimit>: an answered leg cannot outlive this.
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
# The final call statuses as an SQL list, for the hand-written statements' "status NOT IN (...)".
FINAL_STATUSES_SQL = ", ".join(f"'{s}'" for s in sorted(CallStatus.final()))


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
        return cls(
            call_sid=sid, caller=caller, called=called,
            from_city=params.get("FromCity", "")[:100], from_state=params.get("FromState", "")[:100],
            from_zip=params.get("FromZip", "")[:20], from_country=params.get("FromCountry", "")[:2],
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


def answer_store(call: Call, key: str, answer: str, *fields: str) -> str:
    """Keep ``answer`` on the call (a retried webhook gets it back) and save the call's decision, plan index and
    ``fields``: with the request's timeline steps, in one statement at the end of its transaction."""
    call.decision.setdefault("answers", {})[key] = answer
    call_fields_save_with_steps(call, ("decision", "plan_index", *fields))
    return answer
