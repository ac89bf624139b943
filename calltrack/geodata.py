"""US places as coordinates, from the data set shipped in the ``zipcodes`` package (no download, no network).

Plain data in, plain answers out. The indexes are built once per process on first use (about half a second:
``zipcodes`` itself scans a list per query, too slow for a voice webhook; a dict lookup is not).
"""

from __future__ import annotations

import math
import re
from functools import lru_cache

Point = tuple[float, float]  # (latitude, longitude) in degrees
_ZIP = re.compile(r"^\s*(\d{5})(?:-\d{4})?\s*$")


@lru_cache(maxsize=1)
def _indexes() -> tuple[dict[str, Point], dict[str, Point]]:
    import zipcodes  # the package's JSON loads on import: only when nearest routing is used

    by_zip: dict[str, Point] = {}
    sums: dict[str, list[float]] = {}
    for z in zipcodes.list_all():
        try:
            point = (float(z["lat"]), float(z["long"]))
        except (TypeError, ValueError, KeyError):
            continue
        by_zip[z["zip_code"]] = point
        for area in z.get("area_codes") or ():
            acc = sums.setdefault(str(area), [0.0, 0.0, 0.0])
            acc[0] += point[0]
            acc[1] += point[1]
            acc[2] += 1
    by_area = {area: (lat / n, lon / n) for area, (lat, lon, n) in sums.items()}
    return by_zip, by_area


def zip_point(zip_code: str) -> Point | None:
    """The coordinates of a US zip code (``80202`` or ``80202-1234``), or None when unknown."""
    match = _ZIP.match(zip_code or "")
    return _indexes()[0].get(match[1]) if match else None


def area_code_point(area_code: str) -> Point | None:
    """The centre of the zip codes an area code serves (a caller's place derived from their number), or None."""
    return _indexes()[1].get((area_code or "").strip())


def valid_point(latitude: float | None, longitude: float | None) -> bool:
    if latitude is None or longitude is None or not (math.isfinite(latitude) and math.isfinite(longitude)):
        return False
    return -90 <= latitude <= 90 and -180 <= longitude <= 180


def distance_km(a: Point, b: Point) -> float:
    """Great-circle distance (haversine) in kilometres."""
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * 6371.0 * math.asin(min(1.0, math.sqrt(h)))
