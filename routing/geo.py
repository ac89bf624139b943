"""Where a caller is: Twilio's own geo parameters first, else the phonenumbers geocoder.

Plain data in, plain data out (no ORM, no HTTP).
"""

from __future__ import annotations

from dataclasses import dataclass

from calltrack import phone

US_STATES = {
    "Alabama": "AL", "Alaska": "AK", "Arizona": "AZ", "Arkansas": "AR", "California": "CA", "Colorado": "CO",
    "Connecticut": "CT", "Delaware": "DE", "District of Columbia": "DC", "Washington D.C.": "DC", "Florida": "FL",
    "Georgia": "GA", "Hawaii": "HI", "Idaho": "ID", "Illinois": "IL", "Indiana": "IN", "Iowa": "IA", "Kansas": "KS",
    "Kentucky": "KY", "Louisiana": "LA", "Maine": "ME", "Maryland": "MD", "Massachusetts": "MA", "Michigan": "MI",
    "Minnesota": "MN", "Mississippi": "MS", "Missouri": "MO", "Montana": "MT", "Nebraska": "NE", "Nevada": "NV",
    "New Hampshire": "NH", "New Jersey": "NJ", "New Mexico": "NM", "New York": "NY", "North Carolina": "NC",
    "North Dakota": "ND", "Ohio": "OH", "Oklahoma": "OK", "Oregon": "OR", "Pennsylvania": "PA", "Rhode Island": "RI",
    "South Carolina": "SC", "South Dakota": "SD", "Tennessee": "TN", "Texas": "TX", "Utah": "UT", "Vermont": "VT",
    "Virginia": "VA", "Washington": "WA", "West Virginia": "WV", "Wisconsin": "WI", "Wyoming": "WY",
    "Puerto Rico": "PR",
}
_CODES = frozenset(US_STATES.values())


@dataclass(frozen=True)
class CallerGeo:
    city: str = ""
    state: str = ""
    zip: str = ""
    country: str = ""


def caller_geo(*, number: str, city: str = "", state: str = "", zip_code: str = "", country: str = "") -> CallerGeo:
    """The caller's city/state/zip/country.

    Twilio's ``FromCity``/``FromState``/``FromZip``/``FromCountry`` win where given; the gaps are filled from
    the number with the phonenumbers geocoder ('San Francisco, CA' -> city and state; 'Colorado' -> CO).
    A number that cannot be read (anonymous, garbage) leaves the gaps empty.
    """
    city, state, zip_code, country = (v.strip() for v in (city or "", state or "", zip_code or "", country or ""))
    if (not city or not state or not country) and number:
        e164 = phone.to_e164_or_none(number)
        if e164:
            if not country:
                country = phone.country(e164)
            if not city or not state:
                described_city, described_state = _split_description(phone.geo_description(e164), country)
                city = city or described_city
                state = state or described_state
    if len(state) > 2 and country in ("US", "") and state in US_STATES:
        state = US_STATES[state]
    return CallerGeo(city=city, state=state.upper() if len(state) == 2 else state, zip=zip_code, country=country.upper())


def _split_description(text: str, country: str) -> tuple[str, str]:
    """Geocoder text -> (city, state). US: 'San Francisco, CA' or a state name; elsewhere a city/region name."""
    text = (text or "").strip()
    if not text:
        return "", ""
    if "," in text:
        city, _, region = text.rpartition(",")
        region = region.strip()
        if region in _CODES:
            return city.strip(), region
        return city.strip(), US_STATES.get(region, region)
    if country == "US":
        if text in US_STATES:
            return "", US_STATES[text]
        return text, ""
    return text, ""
