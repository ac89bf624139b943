"""The "nearest" strategy: the eligible handlers closest to the caller first. Plain data in, plain answers out."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from calltrack import geodata
from routing.decision import HandlerOption

# Handlers closer to each other than this (seen from the caller) are a tie, decided by the fallback strategy's order.
TIE_KM = 1.0


@dataclass(frozen=True)
class CallerPlace:
    point: geodata.Point | None
    how: str  # "zip 80202", "area code 303", or why unknown


def caller_place(tags: Mapping[str, Any], caller: str) -> CallerPlace:
    """The caller's place: their zip (from Twilio or the number's geocoding), else their area code's centre."""
    zip_code = str(tags.get("caller_zip") or "")
    point = geodata.zip_point(zip_code) if zip_code else None
    if point is not None:
        return CallerPlace(point, f"zip {zip_code}")
    if caller.startswith("+1") and len(caller) == 12:
        area = caller[2:5]
        point = geodata.area_code_point(area)
        if point is not None:
            return CallerPlace(point, f"area code {area}")
    return CallerPlace(None, "the caller's place is unknown")


def nearest_order(options: Sequence[HandlerOption], place: CallerPlace) -> tuple[list[HandlerOption], list[str]]:
    """``options`` renumbered (``position``) nearest first, for the sequential order; handlers without a
    location after all located ones, in their own order; a tie (within ``TIE_KM``) keeps the list's order.
    Returns the options and one note per located handler ("Denver store 3 km")."""
    if place.point is None:
        return list(options), []
    located: list[tuple[float, HandlerOption]] = []
    unlocated: list[HandlerOption] = []
    for o in options:
        if geodata.valid_point(o.latitude, o.longitude):
            located.append((geodata.distance_km(place.point, (o.latitude, o.longitude)), o))
        else:
            unlocated.append(o)
    located.sort(key=lambda pair: (round(pair[0] / TIE_KM), pair[1].position, pair[1].id))
    ordered = [o for _, o in located] + sorted(unlocated, key=lambda o: (o.position, o.id))
    notes = [f"{o.name} {km:.0f} km" for km, o in located]
    return [dataclasses.replace(o, position=i) for i, o in enumerate(ordered)], notes
