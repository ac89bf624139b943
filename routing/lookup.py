"""Routing to the detected destination and by lookup table: which handler or number a call goes to directly.
Plain data in, plain answers out; ``routing.services`` reads the rows."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from calltrack.tags import lookup_value
from routing.decision import DESTINATION, LOOKUP_TABLE, HandlerOption


@dataclass(frozen=True)
class Table:
    id: int
    name: str
    tag_key: str


@dataclass(frozen=True)
class Target:
    """Where a call goes directly: a handler (its hours and caps still apply) or a number; ``why`` for the timeline;
    ``reason`` and ``because`` for the other handlers' skips ("{because} chose Downtown")."""

    handler_id: int | None = None
    number: str = ""
    why: str = ""
    reason: str = LOOKUP_TABLE
    because: str = ""


def destination_target(destination: str, options: Sequence[HandlerOption]) -> Target | None:
    """The campaign's handler whose receiving number is the destination the visitor's page showed."""
    for option in options:
        if option.number and option.number == destination:
            return Target(handler_id=option.id, why=f"detected destination {destination}: handler {option.name}",
                          reason=DESTINATION, because=f"the landing page's destination {destination}")
    return None


def table_keys(tables: Sequence[Table], tags: Mapping[str, Any]) -> list[tuple[Table, str]]:
    """Each table with the call's value to look up in it (tables whose tag the call lacks are left out)."""
    lowered = {str(k).lower(): v for k, v in tags.items() if v not in (None, "")}
    out = []
    for table in tables:
        raw = lowered.get(table.tag_key.lower())
        if raw is not None:
            value = lookup_value(table.tag_key, raw)
            if value:
                out.append((table, value))
    return out


def table_because(table: Table, value: str) -> str:
    """How a lookup table's choice reads: "the lookup table 'Stores' for zip 80202"."""
    key = table.tag_key.lower()
    words = (key.removeprefix("caller_") if key.startswith("caller_") else key).replace("_", " ")
    return f"the lookup table '{table.name}' for {words} {value}"
