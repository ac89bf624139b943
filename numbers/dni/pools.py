"""What the DNI endpoints need of a number pool, as a frozen value read in one statement."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from calltrack.fastdb import fixed_cursor
from calltrack.numbers.models import NumberPool


@dataclass(frozen=True)
class PoolSettings:
    """An enabled pool's settings as the tag's endpoints use them (``numbers.dni.services`` takes this or a
    ``NumberPool``): every field is read, none silently left at a model default."""

    id: int
    key: str
    name: str
    campaign_id: int | None
    source_id: int | None
    number_type: str
    match_area_code: bool
    session_lifetime: int
    attribution_window: int
    overflow_policy: str
    fallback_number: str
    allowed_origins: str

    @property
    def pk(self) -> int:
        return self.id

    @property
    def origins(self) -> list[str]:
        return NumberPool.origins.fget(self)  # type: ignore[attr-defined, arg-type]  # the model's one rule

    @classmethod
    def from_row(cls, row: tuple[Any, ...]) -> PoolSettings:
        values = dict(zip(POOL_FIELDS, row, strict=True))
        values["match_area_code"] = bool(values["match_area_code"])  # SQLite answers 0/1
        return cls(**values)


POOL_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(PoolSettings))
_POOL_BY_KEY = f"SELECT {', '.join(POOL_FIELDS)} FROM {NumberPool._meta.db_table} WHERE key = %s AND enabled"


def pool_settings(key: str) -> PoolSettings | None:
    """The enabled pool with this key (one constant statement: every tag request starts here), or None."""
    with fixed_cursor() as cursor:
        cursor.execute(_POOL_BY_KEY, [key])
        row = cursor.fetchone()
    return None if row is None else PoolSettings.from_row(row)
