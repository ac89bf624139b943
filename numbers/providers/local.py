"""The ``local`` carrier: a simulated carrier whose inventory lives in the database.

A fresh machine without credentials can search, buy, release and port numbers.
Inventory is made on demand and deterministically: the same area code on the
same database always offers the same numbers, and every number is valid for
``phonenumbers`` (real area codes and exchanges, never the 555 range).

Ports take ``CALLTRACK_LOCAL_PORT_SECONDS`` (0 by default: done at the first
status check). A port-in of a number this carrier holds as unassigned
inventory is rejected ("not in service at the losing carrier"), which gives
tests and demos a deterministic rejection.
"""

from __future__ import annotations

import hashlib
import io
import math
import random
import secrets
import wave
from dataclasses import dataclass
from datetime import datetime, timedelta

import phonenumbers
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone

from calltrack import phone
from calltrack.carriers import RECORDING_SID
from calltrack.numbers.models import LocalCarrierMessage, LocalCarrierNumber
from calltrack.numbers.providers.base import (
    AvailableNumber,
    CallerLookupResult,
    CarrierError,
    ClosingChunks,
    PortStatusResult,
    PurchasedNumber,
    RecordingAudio,
)

# Recordings of the local carrier: a WAV file per recording in Django's default storage (MEDIA_ROOT), and a
# recording URL in Twilio's shape on a reserved domain (never fetched: calltrack streams the file itself).
RECORDINGS_DIR = "recordings"
RECORDING_URL = "https://local.calltrack.invalid/Recordings/{sid}"
MAX_RECORDING_SECONDS = 600
_RATE = 8000  # telephone quality: 8 kHz, 8-bit mono, 8 KB a second
TOLL_FREE_PREFIXES = ("800", "833", "844", "855", "866", "877", "888")
State = LocalCarrierNumber.State


def _carrier_id(number: str) -> str:
    return "LN" + hashlib.sha1(number.encode()).hexdigest()[:32]


def _candidates(prefix: str, contains: str, count: int, seed: str) -> list[str]:
    """Deterministic, valid numbers starting with NANP area code ``prefix``."""
    rng = random.Random(f"calltrack-local:{seed}:{prefix}:{contains}")
    found: list[str] = []
    tries = 0
    while len(found) < count and tries < count * 40:
        tries += 1
        exchange = rng.randint(200, 999)
        if exchange % 100 == 11 or exchange == 555:  # N11 service codes and the fictional 555 exchange
            continue
        line = f"{rng.randint(0, 9999):04d}"
        if contains and len(contains) <= 4:
            line = (line[: 4 - len(contains)] + contains)
        elif contains and len(contains) <= 7:
            national = f"{contains:0>7}"[-7:]
            exchange, line = int(national[:3]), national[3:]
            if exchange < 200:
                continue
        candidate = f"+1{prefix}{exchange:03d}{line}"
        try:
            parsed = phonenumbers.parse(candidate)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(parsed) and candidate not in found:
            found.append(candidate)
        if contains and len(contains) > 4:
            break  # only one number can end in a 5-7 digit pattern
    return found


@dataclass(frozen=True)
class LocalRecording:
    sid: str
    url: str
    duration: int


def recording_wav(seconds: int) -> bytes:
    """A playable WAV of ``seconds``: a soft 440 Hz beep in each second, silence between (what a simulated
    conversation sounds like; small enough for the demo)."""
    out = io.BytesIO()
    beep = bytes(128 + int(40 * math.sin(2 * math.pi * 440 * i / _RATE)) for i in range(_RATE // 4))
    second = beep + bytes([128]) * (_RATE - len(beep))
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(1)
        wav.setframerate(_RATE)
        wav.writeframes(second * max(seconds, 1))
    return out.getvalue()


def _recording_name(recording_sid: str) -> str:
    if not RECORDING_SID.match(recording_sid or ""):
        raise CarrierError(f"{recording_sid!r} is not a recording SID.", code="invalid")
    return f"{RECORDINGS_DIR}/{recording_sid}.wav"


@dataclass(frozen=True)
class QueueDial:
    """An outbound call the local carrier was asked to place (``<Dial><Queue>`` to a freed handler's line)."""

    sid: str
    to: str
    caller_id: str
    twiml: str
    status_url: str
    timeout: int


# The local carrier's outbound calls, oldest first: simulate_call plays them (answers the handler's line).
QUEUE_DIALS: list[QueueDial] = []


# The local carrier's caller lookup: a fake, deterministic per number (the same number always gets the same answer),
# with a share of each line type like a real mix of callers. A number ending in 0666 is always a non-fixed VoIP line
# named "SPAM LIKELY", for demos and tests of the spam rules.
_LOCAL_LINE_TYPES = ((45, "mobile"), (75, "landline"), (85, "fixedVoip"), (100, "nonFixedVoip"))
_LOCAL_NAMES = ("JANE DOE", "JOHN SMITH", "MARIA GARCIA", "WEI CHEN", "AISHA KHAN", "LUCAS MARTIN", "ACME PLUMBING",
                "RIVERSIDE DENTAL", "NORTHWIND LLC", "SUNRISE ROOFING")
SPAM_SUFFIX = "0666"


def local_caller_lookup(number: str, fields: tuple[str, ...]) -> CallerLookupResult:
    """The local carrier's fake answer for ``number`` (no database, no network)."""
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException as exc:
        raise CarrierError(f"{number!r} is not a phone number the lookup can read.", code="invalid") from exc
    if not phonenumbers.is_valid_number(parsed):
        return CallerLookupResult(line_type="unknown" if "line_type" in fields else "")
    digest = hashlib.sha256(f"calltrack-lookup:{number}".encode()).digest()
    spam = number.endswith(SPAM_SUFFIX)
    if phone.number_type(number) == "toll_free":
        line_type = "tollFree"
    elif spam:
        line_type = "nonFixedVoip"
    else:
        line_type = next(kind for share, kind in _LOCAL_LINE_TYPES if digest[0] % 100 < share)
    name = "SPAM LIKELY" if spam else _LOCAL_NAMES[digest[1] % len(_LOCAL_NAMES)]
    business = name.endswith(("PLUMBING", "DENTAL", "LLC", "ROOFING"))
    asked_name = "caller_name" in fields
    return CallerLookupResult(
        caller_name=name if asked_name else "", caller_type=("BUSINESS" if business else "CONSUMER") if asked_name else "",
        line_type=line_type if "line_type" in fields else "", carrier_name="Local Carrier" if "line_type" in fields else "",
    )


class LocalCarrier:
    name = "local"

    def caller_lookup(self, *, number: str, fields: tuple[str, ...], timeout: float) -> CallerLookupResult:
        return local_caller_lookup(number, fields)

    def queue_dial(self, *, to: str, caller_id: str, twiml: str, status_url: str, timeout: int) -> str:
        dial = QueueDial("CA" + secrets.token_hex(16), to, caller_id, twiml, status_url, timeout)
        QUEUE_DIALS.append(dial)
        return dial.sid

    def search(
        self, *, country: str = "US", number_type: str = "local", area_code: str = "", contains: str = "",
        near_number: str = "", limit: int = 20,
    ) -> list[AvailableNumber]:
        if country.upper() not in ("US", "CA"):
            raise CarrierError(f"The local carrier only has US and Canadian numbers, not {country}.", code="invalid")
        if near_number:
            try:
                near = phone.to_e164(near_number)
            except phone.InvalidPhoneNumber as exc:
                raise CarrierError(str(exc), code="invalid")
            number_type = "toll_free" if phone.number_type(near) == "toll_free" else "local"
            area_code = phone.area_code(near) if number_type == "local" else ""
        contains = "".join(ch for ch in contains if ch.isdigit())
        if number_type == "toll_free":
            prefixes = [area_code] if area_code in TOLL_FREE_PREFIXES else list(TOLL_FREE_PREFIXES)
            if area_code and area_code not in TOLL_FREE_PREFIXES:
                raise CarrierError(f"{area_code} is not a toll-free prefix ({', '.join(TOLL_FREE_PREFIXES)}).", code="invalid")
        else:
            if not area_code:
                raise CarrierError("Give an area code (or a number to buy near) for local numbers.", code="invalid")
            if not (len(area_code) == 3 and area_code.isdigit()):
                raise CarrierError(f"'{area_code}' is not a 3-digit area code.", code="invalid")
            prefixes = [area_code]
        self._stock(prefixes=prefixes, number_type=number_type, contains=contains, wanted=limit)
        rows = LocalCarrierNumber.objects.filter(state=State.AVAILABLE, area_code__in=prefixes, number_type=number_type)
        if contains:
            rows = rows.filter(number__contains=contains)
        return [
            AvailableNumber(number=row.number, number_type=row.number_type, area_code=row.area_code,
                            region=phone.country(row.number), locality=phone.geo_description(row.number))
            for row in rows.order_by("number")[:limit]
        ]

    def _stock(self, *, prefixes: list[str], number_type: str, contains: str, wanted: int) -> None:
        """Top up the available inventory for these prefixes so a search can return ``wanted`` numbers."""
        for prefix in prefixes:
            have = LocalCarrierNumber.objects.filter(state=State.AVAILABLE, area_code=prefix)
            if contains:
                have = have.filter(number__contains=contains)
            missing = wanted - have.count()
            if missing <= 0:
                continue
            existing = LocalCarrierNumber.objects.filter(area_code=prefix).count()
            # Seeded by how much of the prefix already exists, so each top-up is new yet reproducible.
            fresh = _candidates(prefix, contains, missing + existing + 10, seed=str(existing // 1000))
            taken = set(LocalCarrierNumber.objects.filter(number__in=fresh).values_list("number", flat=True))
            rows = [
                LocalCarrierNumber(number=n, number_type=number_type, area_code=prefix)
                for n in fresh if n not in taken
            ][:missing]
            LocalCarrierNumber.objects.bulk_create(rows, ignore_conflicts=True)

    def buy(self, *, number: str, voice_url: str, status_url: str, fallback_url: str = "", sms_url: str = "") -> PurchasedNumber:
        # ``fallback_url`` is accepted for the interface: the simulated carrier never finds calltrack down.
        with transaction.atomic():
            row = LocalCarrierNumber.objects.select_for_update().filter(number=number).first()
            if row is None:
                try:
                    kind = phone.number_type(phone.to_e164(number))
                except phone.InvalidPhoneNumber as exc:
                    raise CarrierError(str(exc), code="invalid")
                row = LocalCarrierNumber(number=number, number_type="toll_free" if kind == "toll_free" else "local",
                                         area_code=phone.area_code(number))
            elif row.state != State.AVAILABLE:
                raise CarrierError(f"{number} is no longer available to buy.", code="unavailable")
            row.state = State.OWNED
            row.voice_url, row.status_callback, row.sms_url = voice_url, status_url, sms_url
            row.port_request_id = ""
            row.save()
        return PurchasedNumber(number=number, carrier_id=_carrier_id(number))

    def configure(self, *, number: str, carrier_id: str, voice_url: str, status_url: str, fallback_url: str = "", sms_url: str = "") -> None:
        updated = LocalCarrierNumber.objects.filter(number=number, state__in=[State.OWNED, State.PORTING_OUT]).update(
            voice_url=voice_url, status_callback=status_url, sms_url=sms_url, updated_at=timezone.now()
        )
        if not updated:
            raise CarrierError(f"{number} is not a number on this account.", code="not_found")

    def release(self, *, number: str, carrier_id: str) -> None:
        LocalCarrierNumber.objects.filter(number=number, state__in=[State.OWNED, State.PORTING_OUT]).update(
            state=State.AVAILABLE, voice_url="", status_callback="", sms_url="", port_request_id="", updated_at=timezone.now()
        )

    # --- porting -------------------------------------------------------------------------------------------------

    def _port_ready(self, since) -> bool:
        delay = settings.CALLTRACK_LOCAL_PORT_SECONDS
        return timezone.now() >= since + timedelta(seconds=delay)

    def port_in_start(self, *, numbers: list[str], loa_name: str, loa_address: str, losing_carrier: str = "") -> str:
        if not numbers:
            raise CarrierError("A port-in needs at least one number.", code="invalid")
        if not (loa_name and loa_address):
            raise CarrierError("A port-in needs the LOA name and address.", code="invalid")
        owned = list(LocalCarrierNumber.objects.filter(number__in=numbers).exclude(
            state__in=[State.AVAILABLE, State.PORTED_OUT]).values_list("number", flat=True))
        if owned:
            raise CarrierError(f"Already on this account: {', '.join(sorted(owned))}.", code="invalid")
        request_id = "LP" + hashlib.sha1(f"{sorted(numbers)}{timezone.now().isoformat()}".encode()).hexdigest()[:32]
        with transaction.atomic():
            existing = {row.number: row for row in LocalCarrierNumber.objects.select_for_update().filter(number__in=numbers)}
            for number in numbers:
                row = existing.get(number)
                # An unassigned inventory number is "not in service" elsewhere: remember it, the port will be rejected.
                rejected = row is not None and row.state == State.AVAILABLE
                row = row or LocalCarrierNumber(number=number, number_type=phone.number_type(number), area_code=phone.area_code(number))
                row.other_carrier = "rejected" if rejected else (losing_carrier or "other")
                row.state = State.PORTING_IN
                row.port_request_id = request_id
                row.save()
        return request_id

    def port_in_status(self, *, request_id: str) -> PortStatusResult:
        rows = list(LocalCarrierNumber.objects.filter(port_request_id=request_id))
        if not rows:
            raise CarrierError(f"No port-in {request_id} at the local carrier.", code="not_found")
        numbers = sorted(row.number for row in rows)
        if any(row.state == State.OWNED for row in rows):
            return PortStatusResult(status="completed", numbers=numbers)
        if all(row.state == State.AVAILABLE for row in rows):
            bad = [row.number for row in rows if row.other_carrier == "rejected"]
            return PortStatusResult(status="rejected", reason=f"Not in service at the losing carrier: {', '.join(bad)}.", numbers=numbers)
        if not self._port_ready(min(row.updated_at for row in rows)):
            return PortStatusResult(status="submitted", numbers=numbers)
        bad = [row.number for row in rows if row.other_carrier == "rejected"]
        if bad:
            LocalCarrierNumber.objects.filter(port_request_id=request_id).update(state=State.AVAILABLE, updated_at=timezone.now())
            return PortStatusResult(status="rejected", reason=f"Not in service at the losing carrier: {', '.join(bad)}.", numbers=numbers)
        LocalCarrierNumber.objects.filter(port_request_id=request_id).update(state=State.OWNED, updated_at=timezone.now())
        return PortStatusResult(status="completed", numbers=numbers)

    def port_out_start(self, *, number: str, carrier_id: str, to_carrier: str) -> str:
        reference = "LO" + hashlib.sha1(f"{number}{timezone.now().isoformat()}".encode()).hexdigest()[:32]
        updated = LocalCarrierNumber.objects.filter(number=number, state=State.OWNED).update(
            state=State.PORTING_OUT, other_carrier=to_carrier, port_request_id=reference, updated_at=timezone.now()
        )
        if not updated:
            if LocalCarrierNumber.objects.filter(number=number, state=State.PORTING_OUT).exists():
                return LocalCarrierNumber.objects.get(number=number).port_request_id
            raise CarrierError(f"{number} is not a number on this account.", code="not_found")
        return reference

    def port_out_status(self, *, number: str, carrier_id: str) -> PortStatusResult:
        row = LocalCarrierNumber.objects.filter(number=number).first()
        if row is None or row.state in (State.PORTED_OUT, State.AVAILABLE):
            return PortStatusResult(status="completed", numbers=[number])
        if row.state != State.PORTING_OUT:
            return PortStatusResult(status="rejected", reason=f"{number} is not porting out.", numbers=[number])
        if not self._port_ready(row.updated_at):
            return PortStatusResult(status="submitted", numbers=[number])
        row.state = State.PORTED_OUT
        row.voice_url = row.status_callback = row.sms_url = ""
        row.save()
        return PortStatusResult(status="completed", numbers=[number])

    # --- call recordings -------------------------------------------------------------------------------------

    def text_send(self, *, to: str, from_number: str, body: str, media_urls: list[str], status_url: str) -> str:
        """Record the text as sent (``LocalCarrierMessage``): nothing leaves the machine. Its delivery status comes
        back when someone (a test, the demo) posts the signed status callback, as Twilio would."""
        if not phone.to_e164_or_none(to):
            raise CarrierError(f"{to!r} is not a phone number a text can go to.", code="invalid")
        sid = "SM" + secrets.token_hex(16)
        LocalCarrierMessage.objects.create(sid=sid, from_number=from_number, to_number=to, body=body, media_urls=list(media_urls),
                                           status_callback=status_url)
        return sid

    def text_sent_find(self, *, to: str, from_number: str, body: str, status_url: str, since: datetime) -> list[str]:
        """The local carrier keeps each text's status URL, which names our text (``?text=<id>``): an exact answer."""
        return list(LocalCarrierMessage.objects.filter(to_number=to, from_number=from_number, status_callback=status_url,
                                                       created_at__gte=since).order_by("-created_at", "-id").values_list("sid", flat=True))

    def recording_create(self, *, seconds: int) -> LocalRecording:
        """Record a (simulated) call of ``seconds``: what Twilio does for ``<Dial record>``. The WAV is stored
        under ``recordings/`` of Django's default storage; its SID and URL are what the recording status
        callback then reports."""
        seconds = max(1, min(int(seconds), MAX_RECORDING_SECONDS))
        sid = "RE" + secrets.token_hex(16)
        default_storage.save(_recording_name(sid), ContentFile(recording_wav(seconds)))
        return LocalRecording(sid=sid, url=RECORDING_URL.format(sid=sid), duration=seconds)

    def recording_open(self, *, recording_sid: str) -> RecordingAudio:
        name = _recording_name(recording_sid)
        if not default_storage.exists(name):
            raise CarrierError(f"The local carrier has no recording {recording_sid}.", code="not_found")
        size = default_storage.size(name)
        handle = default_storage.open(name, "rb")
        return RecordingAudio(chunks=ClosingChunks(iter(lambda: handle.read(64 * 1024), b""), handle.close), content_type="audio/wav", size=size)

    def recording_delete(self, *, recording_sid: str) -> None:
        default_storage.delete(_recording_name(recording_sid))  # a missing file is no error
