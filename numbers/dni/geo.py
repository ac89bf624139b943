"""Where a destination number is, and how the page wrote it: the inputs of type-for-type matching."""

from __future__ import annotations

import re
from functools import lru_cache

import phonenumbers
from phonenumbers.geodata import GEOCODE_DATA

_NANP_AREA_CODES = tuple(f"{npa}" for npa in range(200, 1000))


@lru_cache(maxsize=1024)
def nanp_state(area_code: str) -> str:
    """The state or province of a North American area code (``'303'`` -> ``'Colorado'``), or ''."""
    return GEOCODE_DATA.get(f"1{area_code}", {}).get("en", "")


@lru_cache(maxsize=128)
def nanp_area_codes_in_state(state: str) -> frozenset[str]:
    """Every North American area code of ``state`` (as :func:`nanp_state` names it)."""
    if not state:
        return frozenset()
    return frozenset(code for code in _NANP_AREA_CODES if nanp_state(code) == state)


_DIGIT = re.compile(r"\d")


@lru_cache(maxsize=65536)
def format_like(template: str, e164: str) -> str:
    """``e164`` written the way ``template`` writes its number: ``(800) 555-0199`` -> ``(415) 555-0123``.

    The template's digits are replaced one for one by the new number's digits (with the country
    code when the template has one), keeping its punctuation, spaces and prefix. When the digit
    counts do not line up, the number's national format is the answer.
    """
    number = phonenumbers.parse(e164)
    national = phonenumbers.national_significant_number(number)
    country = str(number.country_code)
    slots = len(_DIGIT.findall(template))
    if slots == len(national):
        digits = national
    elif slots == len(country) + len(national) and template.lstrip().lstrip("+").startswith(country):
        digits = country + national
    elif slots == len(national) + 1 and national[0] != "0" and _DIGIT.search(template).group() == "0":
        digits = "0" + national  # a trunk prefix, as in UK national formats
    else:
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)
    feed = iter(digits)
    return _DIGIT.sub(lambda _match: next(feed), template)
