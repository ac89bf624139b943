"""Type-for-type matching: which of a pool's numbers may replace a page's number, best first."""

from __future__ import annotations

from typing import Any, NamedTuple

from django.db.models import Q

from calltrack import phone
from calltrack.numbers.dni import geo
from calltrack.numbers.models import NumberPool, NumberType, PoolNumberType


class Tier(NamedTuple):
    """One step of type-for-type matching: the same filter for the ORM (``q``) and as plain SQL."""

    name: str
    q: Q
    sql: str = "TRUE"
    params: tuple[Any, ...] = ()


_GEOGRAPHIC = (NumberType.LOCAL, NumberType.MOBILE)


def _geographic(name: str, *, area_codes: list[str] | None = None) -> Tier:
    q = Q(number_type__in=_GEOGRAPHIC)
    sql = f"number_type IN('{_GEOGRAPHIC[0]}','{_GEOGRAPHIC[1]}')"
    if area_codes is None:
        return Tier(name, q, sql)
    # One array parameter, however many area codes the state has: the statement's text stays the same for every state.
    return Tier(name, q & Q(area_code__in=area_codes), f"{sql} AND area_code=ANY(%s::text[])", (list(area_codes),))


_TOLL_FREE = Tier("toll-free", Q(number_type=NumberType.TOLL_FREE), f"number_type = '{NumberType.TOLL_FREE}'")
ANY = Tier("any", Q())


def candidate_tiers(*, pool: NumberPool, destination: str) -> list[Tier]:
    """The filters to try in order, best match first: type for type, then area code, state, any.

    A toll-free destination gets toll-free numbers; a local one local numbers of its area code
    (where the pool has some free), then of its state, then any local number. The pool's
    ``number_type`` restricts the type; without a destination any number of that type fits.
    """
    wants = pool.number_type
    dest_type = phone.number_type(destination) if destination else ""
    if wants == PoolNumberType.TOLL_FREE or (wants == PoolNumberType.MATCH and dest_type == NumberType.TOLL_FREE):
        return [_TOLL_FREE]
    if wants == PoolNumberType.MATCH and not destination:
        return [ANY]
    tiers: list[Tier] = []
    if destination and pool.match_area_code:
        area = phone.area_code(destination)
        if area:
            tiers.append(_geographic(f"area code {area}", area_codes=[area]))
            if destination.startswith("+1"):
                state = geo.nanp_state(area)
                others = sorted(geo.nanp_area_codes_in_state(state) - {area})
                if others:
                    tiers.append(_geographic(f"state {state}", area_codes=others))
    tiers.append(_geographic("local"))
    return tiers
