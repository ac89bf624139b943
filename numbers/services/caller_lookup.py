"""The carrier's caller lookup, cached per number (issue 28): the voice path asks it when a campaign's spam rules say
``"lookup"``, and goes on without an answer whatever happens (a carrier down, slow or refusing never fails a call).

Cost, per call: a cached answer is one read on the unique index of ``CallerLookup.number``; a miss asks the carrier
(with ``CALLTRACK_CALLER_LOOKUP_TIMEOUT``, billed at Twilio) and writes the answer in one upsert, in a savepoint so
that nothing it does can abort the call's transaction. Failures are not cached: the next call asks again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import DatabaseError, transaction

from calltrack.carriers import CallerLookupResult, Carrier, CarrierError
from calltrack.numbers import providers
from tracking.models import CallerLookup

log = logging.getLogger("calltrack.routing")


@dataclass(frozen=True)
class CallerIdentity:
    """What the lookup gave for a call: the caller name and line type ('' when unknown), whether it came from the
    cache, and why there is none when the carrier failed."""

    caller_name: str = ""
    line_type: str = ""
    cached: bool = False
    error: str = ""

    def words(self) -> str:
        """"carrier lookup (cached): line type mobile, caller name JANE DOE" for the call's timeline."""
        if self.error:
            return f"carrier lookup failed, went on without it: {self.error}"
        found = [f"line type {self.line_type}" if self.line_type else "", f"caller name {self.caller_name}" if self.caller_name else ""]
        said = ", ".join(f for f in found if f) or "nothing known"
        return f"carrier lookup{' (cached)' if self.cached else ''}: {said}"


def _clean(text: str, limit: int) -> str:
    return "".join(ch for ch in (text or "") if ch >= " " and not 0xD800 <= ord(ch) <= 0xDFFF)[:limit].strip()


def caller_lookup_get(*, number: str, fields: tuple[str, ...], now: datetime, carrier: Carrier | None = None) -> CallerIdentity:
    """The caller name and/or line type of ``number`` (``fields``: "caller_name", "line_type"): the cached answer
    when it is younger than ``CALLTRACK_CALLER_LOOKUP_DAYS`` and asked at least ``fields``, else the carrier's
    (``carrier`` or the configured one), written to the cache. Never raises."""
    if not fields:
        return CallerIdentity()
    since = now - timedelta(days=settings.CALLTRACK_CALLER_LOOKUP_DAYS)
    row = CallerLookup.objects.filter(number=number).first()
    if row is not None and row.fetched_at >= since and row.covers(fields):
        return CallerIdentity(caller_name=row.caller_name if "caller_name" in fields else "",
                              line_type=row.line_type if "line_type" in fields else "", cached=True)
    try:
        if carrier is None:
            carrier = providers.get_carrier()
        answer = carrier.caller_lookup(number=number, fields=fields, timeout=settings.CALLTRACK_CALLER_LOOKUP_TIMEOUT)
    except CarrierError as exc:
        log.warning("caller lookup of %s failed: %s", number, exc)
        return CallerIdentity(error=str(exc)[:200])
    except Exception as exc:  # noqa: BLE001 - a carrier's bug must not fail the call either
        log.exception("caller lookup of %s failed", number)
        return CallerIdentity(error=f"{type(exc).__name__}: {exc}"[:200])
    answer = CallerLookupResult(
        caller_name=_clean(answer.caller_name, 100), caller_type=_clean(answer.caller_type, 20),
        line_type=_clean(answer.line_type, 20), carrier_name=_clean(answer.carrier_name, 100),
    )
    _store(number=number, fields=fields, answer=answer, now=now)
    return CallerIdentity(caller_name=answer.caller_name, line_type=answer.line_type)


def _store(*, number: str, fields: tuple[str, ...], answer: CallerLookupResult, now: datetime) -> None:
    """Write the answer for ``number`` (an upsert: two calls from the same number racing both write, the last wins)."""
    row = CallerLookup(number=number, fields=",".join(sorted(fields)), caller_name=answer.caller_name,
                       caller_type=answer.caller_type, line_type=answer.line_type, carrier_name=answer.carrier_name, fetched_at=now)
    try:
        with transaction.atomic():
            CallerLookup.objects.bulk_create(
                [row], update_conflicts=True, unique_fields=["number"],
                update_fields=["fields", "caller_name", "caller_type", "line_type", "carrier_name", "fetched_at"],
            )
    except DatabaseError:
        log.exception("caller lookup of %s: the answer could not be cached", number)
