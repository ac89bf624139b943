"""Routing to the detected destination and by lookup table: which handler or number a call goes to directly.
Plain data in, plain answers out; ``routing.services`` reads the rows."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from calltrack.tags import lookup_call_value, lookup_keys
from routing.decision import DESTINATION, LOOKUP_TABLE, HandlerOption


@dataclass(frozen=True)
class Table:
    id: int
    name: str
    tag_key: str  # one tag, or several comma-separated (``calltrack.tags.lookup_keys``)
    then_others: bool = False  # the looked-up handler cannot take the call: try the campaign's other handlers


@dataclass(frozen=True)
class Target:
    """Where a call goes directly: a handler (its hours and caps still apply) or a number; ``why`` for the timeline;
    ``reason`` and ``because`` for the other handlers' skips ("{because} chose Downtown")."""

    handler_id: int | None = None
    number: str = ""
    why: str = ""
    reason: str = LOOKUP_TABLE
    because: str = ""
    then_others: bool = False  # the handler first, then the campaign's other handlers (else only that handler)


def destination_target(destination: str, options: Sequence[HandlerOption]) -> Target | None:
    """The campaign's handler whose receiving number is the destination the visitor's page showed."""
    for option in options:
        if option.number and option.number == destination:
            return Target(handler_id=option.id, why=f"detected destination {destination}: handler {option.name}",
                          reason=DESTINATION, because=f"the landing page's destination {destination}")
    return None


def table_keys(tables: Sequence[Table], tags: Mapping[str, Any]) -> list[tuple[Table, str]]:
    """Each table with the call's value to look up in it (tables keyed on a tag the call lacks are left out)."""
    out = []
    for table in tables:
        value = lookup_call_value(table.tag_key, tags)
        if value:
            out.append((table, value))
    return out


def table_because(table: Table, value: str) -> str:
    """How a lookup table's choice reads: "the lookup table 'Stores' for zip 80202", "... for state co and utm source
    google"."""
    keys = lookup_keys(table.tag_key)
    values = value.split("|") if len(keys) > 1 else [value]
    words = [
        f"{(key.lower().removeprefix('caller_')).replace('_', ' ')} {part}" for key, part in zip(keys, values, strict=False)
    ]
    return f"the lookup table '{table.name}' for {' and '.join(words)}"
