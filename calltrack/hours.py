"""Weekly business hours: parsing, validation and "open at" in the handler's own zone.

Stored as ``{"mon": ["09:00-12:00", "13:00-17:00"], "fri": ["22:00-02:00+1"], ...}``.
A range closes after it opens on the same day; a range that runs past midnight
says so with ``+1`` (``22:00-02:00+1`` on Friday is open until 02:00 Saturday),
so a typo like ``17:00-09:00`` is caught instead of silently meaning "overnight".
``24:00`` may close a day. Plain data in, plain answers out: no ORM here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DAY_NAMES = dict(zip(DAYS, ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")))
_RANGE = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*(\+1)?\s*$")

PRESETS: dict[str, dict[str, list[str]]] = {
    "weekdays 9-5": {d: ["09:00-17:00"] for d in DAYS[:5]},
    "weekdays 8-8": {d: ["08:00-20:00"] for d in DAYS[:5]},
    "every day 9-9": {d: ["09:00-21:00"] for d in DAYS},
}


class HoursError(ValueError):
    pass


@dataclass(frozen=True)
class Span:
    """Minutes from Monday 00:00 (0..10080+); overnight spans may run past the week's end."""

    start: int
    end: int
    label: str


def _minutes(hh: str, mm: str, text: str) -> int:
    h, m = int(hh), int(mm)
    if m > 59 or h > 24 or (h == 24 and m != 0):
        raise HoursError(f"'{text}': {hh}:{mm} is not a time of day")
    return h * 60 + m


def parse_range(text: str) -> tuple[int, int, bool]:
    """``'09:00-17:00'`` -> (540, 1020, False). Raises HoursError with the reason."""
    match = _RANGE.match(text or "")
    if not match:
        raise HoursError(f"'{text}' is not a range like 09:00-17:00 (or 22:00-02:00+1 past midnight)")
    start = _minutes(match[1], match[2], text)
    end = _minutes(match[3], match[4], text)
    overnight = bool(match[5])
    if start == 24 * 60:
        raise HoursError(f"'{text}': a range cannot open at 24:00")
    if overnight:
        if end >= start or end == 24 * 60:
            raise HoursError(f"'{text}': +1 is only for ranges that close after midnight, earlier than they open")
        return start, end, True
    if end <= start:
        raise HoursError(
            f"'{text}' closes before it opens; write {match[1]}:{match[2]}-{match[3]}:{match[4]}+1 "
            "if it runs past midnight"
        )
    return start, end, False


def spans(hours: dict[str, list[str]]) -> list[Span]:
    out: list[Span] = []
    for index, day in enumerate(DAYS):
        for text in hours.get(day, []) or []:
            start, end, overnight = parse_range(text)
            base = index * 1440
            out.append(Span(base + start, base + end + (1440 if overnight else 0), f"{DAY_NAMES[day]} {text.strip()}"))
    return out


def validate(hours: object) -> dict[str, list[str]]:
    """Check shape, each range and overlaps (including an overnight range running into the next day).

    Returns the normalized hours; raises HoursError listing every problem.
    """
    if hours in (None, ""):
        return {}
    if not isinstance(hours, dict):
        raise HoursError("Business hours must map days (mon..sun) to lists of ranges.")
    problems: list[str] = []
    normalized: dict[str, list[str]] = {}
    for key, ranges in hours.items():
        if key not in DAYS:
            problems.append(f"'{key}' is not a day; use one of {', '.join(DAYS)}")
            continue
        if isinstance(ranges, str):
            ranges = [r for r in ranges.split(",") if r.strip()]
        if not isinstance(ranges, list) or not all(isinstance(r, str) for r in ranges):
            problems.append(f"{DAY_NAMES[key]}: ranges must be a list of texts like '09:00-17:00'")
            continue
        cleaned = []
        for text in ranges:
            try:
                parse_range(text)
                cleaned.append(re.sub(r"\s+", "", text))
            except HoursError as exc:
                problems.append(f"{DAY_NAMES[key]}: {exc}")
        if cleaned:
            normalized[key] = cleaned
    if not problems:
        ordered = sorted(spans(normalized), key=lambda s: s.start)
        week = 7 * 1440
        # Compare each span with the next, and the week's last with Monday's first (wrap-around).
        for a, b in zip(ordered, ordered[1:]):
            if b.start < a.end:
                problems.append(f"{a.label} overlaps {b.label}")
        if len(ordered) > 1 and ordered[-1].end > week and ordered[0].start < ordered[-1].end - week:
            problems.append(f"{ordered[-1].label} overlaps {ordered[0].label}")
    if problems:
        raise HoursError("; ".join(problems))
    return {day: normalized[day] for day in DAYS if day in normalized}


@lru_cache(maxsize=1024)
def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise HoursError(f"'{name}' is not an IANA time zone (like America/New_York)") from None


def _cached_spans(hours: dict[str, list[str]]) -> list[Span]:
    key = tuple((d, tuple(hours.get(d, ()))) for d in DAYS)
    return _spans_for_key(key)


@lru_cache(maxsize=4096)
def _spans_for_key(key: tuple[tuple[str, tuple[str, ...]], ...]) -> list[Span]:
    return spans({d: list(r) for d, r in key})


def is_open(hours: dict[str, list[str]], tz_name: str, at: datetime, *, always_open: bool = False) -> bool:
    """Is the schedule open at the aware datetime ``at``, read on the wall clock of ``tz_name``?"""
    if always_open:
        return True
    local = at.astimezone(zone(tz_name))
    minute = local.weekday() * 1440 + local.hour * 60 + local.minute
    week = 7 * 1440
    for span in _cached_spans(hours):
        if span.start <= minute < span.end or (span.end > week and minute < span.end - week):
            return True
    return False


