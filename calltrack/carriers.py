"""The carrier interface: what calltrack needs from whoever owns the phone lines.

Shared (every app may name these types): the numbers app implements the carriers (``calltrack.numbers.providers``)
and owns every service that talks to one (buying, porting, recordings at the carrier).

One small surface (search, buy, configure, release, port in, port out) so the
services never know which carrier is behind it. Every failure is a
:class:`CarrierError` whose ``str()`` is a sentence an operator can act on.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from django.conf import settings

# A recording's SID, at Twilio and at the local carrier alike: "RE" and 32 hex digits.
RECORDING_SID = re.compile(r"^RE[0-9a-fA-F]{32}$")


class CarrierError(Exception):
    """A carrier refused or failed; ``str()`` says why in plain words.

    ``code`` is a short machine word (``unavailable``, ``auth``, ``rate_limited``,
    ``not_found``, ``invalid``, ``failed``) so callers can decide to retry.
    """

    def __init__(self, message: str, *, code: str = "failed") -> None:
        self.code = code
        super().__init__(message)


@dataclass(frozen=True)
class AvailableNumber:
    number: str  # E.164
    number_type: str  # local | toll_free | mobile
    area_code: str = ""
    region: str = ""
    locality: str = ""


@dataclass(frozen=True)
class PurchasedNumber:
    number: str
    carrier_id: str


@dataclass(frozen=True)
class PortStatusResult:
    """A port's state at the carrier, in our words (PortStatus values)."""

    status: str  # submitted | completed | rejected
    reason: str = ""
    numbers: list[str] = field(default_factory=list)


class ClosingChunks:
    """Chunks of a body that hold a file or connection open: ``close()`` (which Django calls when the response
    ends, read or not) releases it."""

    def __init__(self, chunks: Iterator[bytes], close: Callable[[], None]) -> None:
        self._chunks, self._close = chunks, close

    def __iter__(self) -> ClosingChunks:
        return self

    def __next__(self) -> bytes:
        return next(self._chunks)

    def close(self) -> None:
        self._close()


@dataclass
class RecordingAudio:
    """A call recording's audio, read in chunks (close ``chunks`` when done, e.g. through StreamingHttpResponse)."""

    chunks: ClosingChunks
    content_type: str
    size: int | None = None


@dataclass(frozen=True)
class CallerLookupResult:
    """What the carrier's lookup says about a caller's number: its caller name (CNAM) and whether that is a
    consumer or a business, and its line type in Twilio Lookup v2's words (``mobile``, ``landline``, ``fixedVoip``,
    ``nonFixedVoip``, ``tollFree``, ...). '' for what was not asked or not known."""

    caller_name: str = ""
    caller_type: str = ""
    line_type: str = ""
    carrier_name: str = ""


class Carrier(Protocol):
    name: str

    def search(
        self, *, country: str = "US", number_type: str = "local", area_code: str = "", contains: str = "",
        near_number: str = "", limit: int = 20,
    ) -> list[AvailableNumber]:
        """Numbers we could buy now; fewer than ``limit`` (maybe none) when the inventory runs short."""

    def buy(self, *, number: str, voice_url: str, status_url: str, fallback_url: str = "", sms_url: str = "") -> PurchasedNumber:
        """Buy ``number`` with its voice webhook, status callback, voice fallback URL and messaging webhook already set."""

    def configure(self, *, number: str, carrier_id: str, voice_url: str, status_url: str, fallback_url: str = "", sms_url: str = "") -> None:
        """Point an owned number's voice webhook, status callback, voice fallback URL and messaging webhook at us."""

    def text_send(self, *, to: str, from_number: str, body: str, media_urls: list[str], status_url: str) -> str:
        """Send a text from one of our numbers; ``status_url`` hears its delivery status. Returns the MessageSid."""

    def text_sent_find(self, *, to: str, from_number: str, body: str, status_url: str, since: datetime) -> list[str]:
        """The MessageSids of texts the carrier took since ``since`` that may be the one ``text_send`` was asked for
        with these values (newest first; [] when none): how a retry learns that a worker which died mid-send had
        the text sent already. A CarrierError when the carrier cannot be asked."""

    def release(self, *, number: str, carrier_id: str) -> None:
        """Give an owned number back. Releasing a number the carrier no longer has is not an error."""

    def port_in_start(self, *, numbers: list[str], loa_name: str, loa_address: str, losing_carrier: str = "") -> str:
        """Ask the carrier to port ``numbers`` in; returns the carrier's request id."""

    def port_in_status(self, *, request_id: str) -> PortStatusResult:
        """Where a port-in stands."""

    def port_out_start(self, *, number: str, carrier_id: str, to_carrier: str) -> str:
        """Note that ``number`` is leaving for ``to_carrier``; returns a reference."""

    def port_out_status(self, *, number: str, carrier_id: str) -> PortStatusResult:
        """``completed`` once the number has left us."""

    def recording_open(self, *, recording_sid: str) -> RecordingAudio:
        """The audio of a call recording (CarrierError ``not_found`` when the carrier no longer has it)."""

    def recording_delete(self, *, recording_sid: str) -> None:
        """Delete a call recording at the carrier. Deleting one the carrier no longer has is not an error."""

    def queue_dial(self, *, to: str, caller_id: str, twiml: str, status_url: str, timeout: int) -> str:
        """Place an outbound call to ``to`` (a freed handler's line) that runs ``twiml`` (``<Dial><Queue>``: take the
        next caller waiting), with ``status_url`` as its status callback (answered, completed). Returns the call's SID."""

    def caller_lookup(self, *, number: str, fields: tuple[str, ...], timeout: float) -> CallerLookupResult:
        """The caller name and/or line type of ``number`` (``fields``: "caller_name", "line_type"), answered within
        ``timeout`` seconds or a CarrierError. May cost money at the carrier (Twilio bills each lookup)."""


def webhook_urls() -> tuple[str, str]:
    """Absolute voice and status URLs the carrier calls (from CALLTRACK_PUBLIC_BASE_URL)."""
    base = (settings.CALLTRACK_PUBLIC_BASE_URL or "http://localhost:8000").rstrip("/")
    # Fixed paths: operators paste them into Twilio too (see calltrack/urls.py).
    return f"{base}/voice/incoming", f"{base}/voice/status"


def sms_webhook_urls() -> tuple[str, str]:
    """Absolute URLs of the messaging webhook (a number's SMS URL) and of the texts' status callback."""
    base = (settings.CALLTRACK_PUBLIC_BASE_URL or "http://localhost:8000").rstrip("/")
    return f"{base}/sms/incoming", f"{base}/sms/status"

