"""What the DNI endpoints need of a number pool, as a frozen value read in one statement, and kept per process.

On PostgreSQL each worker keeps the settings it read (:func:`cached_pool_settings`) with their version (an md5 of
the pool's row as PostgreSQL prints it), and the request's own first statement re-checks that version
(:data:`POOL_IS_CURRENT`) before it writes anything: a pool edited, disabled or deleted meanwhile is never used for
a write; the request starts again from a fresh read (:class:`StalePool`). A request that makes no such statement
reads the pool afresh (the views decide).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from functools import cached_property
from typing import Any, ClassVar

from django.db import connection
from django.db.models.signals import post_delete, post_save

from calltrack.account_fields import first_account_id
from calltrack.fastdb import fetchone_first, fixed_cursor
from calltrack.models import Account
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
    #: The md5 of the pool's row when it was read, for a statement to re-check (:data:`POOL_IS_CURRENT`); '' when the
    #: settings were just read and need no check. Not a field: set by :func:`pool_settings`.
    version: ClassVar[str] = ""

    @property
    def pk(self) -> int:
        return self.id

    @cached_property
    def origins(self) -> list[str]:
        return NumberPool.origins.fget(self)  # type: ignore[attr-defined, arg-type]  # the model's one rule

    @classmethod
    def from_row(cls, row: tuple[Any, ...]) -> PoolSettings:
        values = dict(zip(POOL_FIELDS, row, strict=True))
        values["match_area_code"] = bool(values["match_area_code"])  # SQLite answers 0/1
        return cls(**values)

    def checked_as(self, version: str) -> PoolSettings:
        """These settings, to be re-checked against ``version`` by the statement that uses them."""
        copy = PoolSettings(**{name: getattr(self, name) for name in POOL_FIELDS})
        object.__setattr__(copy, "version", version)
        return copy


class StalePool(Exception):
    """The pool's settings a worker kept are no longer the pool's (edited, disabled or deleted): read them again."""


POOL_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(PoolSettings))
_TABLE = NumberPool._meta.db_table
# Every column the endpoints read, and ``enabled``: a change to any of them changes the version.
_VERSION = "md5(ROW({columns}, {prefix}enabled)::text)"
_ACCOUNTS = Account._meta.db_table
# The pool of a tag's name: ``key`` in the install's first account, ``slug/key`` in the account ``slug`` (an unknown
# slug names no pool: never another account's). One constant statement; (account_id, key) is the unique index.
_WHERE_NAMED = (
    f"WHERE key = %s AND enabled AND account_id = CASE WHEN %s = '' THEN (SELECT min(id) FROM {_ACCOUNTS}) "
    f"ELSE (SELECT id FROM {_ACCOUNTS} WHERE slug = %s) END"
)
_POOL_BY_KEY = f"SELECT {', '.join(POOL_FIELDS)} FROM {_TABLE} {_WHERE_NAMED}"
_PG_POOL_BY_KEY = (
    f"SELECT {', '.join(POOL_FIELDS)}, {_VERSION.format(columns=', '.join(POOL_FIELDS), prefix='')} FROM {_TABLE} {_WHERE_NAMED}"
)
#: SQL true when the pool settings bound as ``%(pool)s`` and ``%(pool_version)s`` are still the pool's (always, for
#: a version ''): for a statement's WHERE, so it writes nothing with stale settings.
POOL_IS_CURRENT = (
    f"(%(pool_version)s::text = '' OR EXISTS (SELECT 1 FROM {_TABLE} pv WHERE pv.id = %(pool)s AND pv.enabled AND "
    f"{_VERSION.format(columns=', '.join(f'pv.{name}' for name in POOL_FIELDS), prefix='pv.')} = %(pool_version)s))"
)


#: A pool's name in a page tag (``data-pool``, ``data-swap``): its key, after its account's slug and a slash except in
#: the install's first account (``bravo/spring-sale``; ``spring-sale`` alone is the first account's).
POOL_NAME = re.compile(r"^(?:([-a-zA-Z0-9_]{1,64})/)?([-a-zA-Z0-9_]{1,64})$")


def pool_name_split(name: str) -> tuple[str, str]:
    """(account slug or '', key) of a tag's pool name (:data:`POOL_NAME`, checked by the caller)."""
    slug, _, key = name.rpartition("/")
    return slug, key


def pool_tag_name(pool: NumberPool, *, first_id: int | None = None, account_slug: str | None = None) -> str:
    """What a page tag calls ``pool`` (``data-pool``): its key in the install's first account (as before accounts
    existed, so its tags never change), else its account's slug, a slash and its key. ``first_id`` and
    ``account_slug``, when the caller has them (a list of pools), spare the statements that read them."""
    if pool.account_id == (first_id if first_id is not None else first_account_id()):
        return pool.key
    slug = account_slug or Account.objects.values_list("slug", flat=True).get(pk=pool.account_id)
    return f"{slug}/{pool.key}"


def _named(name: str) -> list[str]:
    slug, key = pool_name_split(name)
    return [key, slug, slug]


def pool_settings(name: str) -> PoolSettings | None:
    """The enabled pool a tag names (``key`` or ``slug/key``), read now (one constant statement), or None."""
    with fixed_cursor() as cursor:
        cursor.execute(_POOL_BY_KEY, _named(name))
        row = cursor.fetchone()
    return None if row is None else PoolSettings.from_row(row)


_KEPT: dict[str, PoolSettings] = {}
_KEPT_MAX = 1000


def cached_pool_settings(key: str) -> PoolSettings | None:
    """The enabled pool a tag names (``key`` or ``slug/key``) as this worker last read it, to be re-checked (``version``) by the statement
    that uses it; read (one statement) when not kept. Elsewhere than on PostgreSQL: :func:`pool_settings`."""
    kept = _KEPT.get(key)
    if kept is not None:
        return kept
    if connection.vendor != "postgresql":
        return pool_settings(key)
    row = fetchone_first(_PG_POOL_BY_KEY, _named(key))  # a read: the connection's health check too
    if row is None:
        return None
    settings = PoolSettings.from_row(row[:-1]).checked_as(row[-1])
    if len(_KEPT) >= _KEPT_MAX:
        _KEPT.clear()
    _KEPT[key] = settings
    return settings


def forget_pool_settings(key: str | None = None) -> None:
    """Drop the kept settings of the pool a tag names ``key`` (of every pool when None)."""
    if key is None:
        _KEPT.clear()
    else:
        _KEPT.pop(key, None)


def _forget_all(sender: type, **kwargs: Any) -> None:
    # This worker's own edits are seen at once (the version check catches every other worker's, and bulk updates).
    _KEPT.clear()


post_save.connect(_forget_all, sender=NumberPool, dispatch_uid="dni-pool-settings-saved")
post_delete.connect(_forget_all, sender=NumberPool, dispatch_uid="dni-pool-settings-deleted")
post_save.connect(_forget_all, sender=Account, dispatch_uid="dni-pool-settings-account-saved")  # a slug renamed
