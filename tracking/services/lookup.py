"""Writes to lookup tables and their rows (admin, API and the CSV commands all come through here)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from calltrack import phone
from calltrack.csv_export import csv_safe, csv_unsafe
from calltrack.model_writes import instance_apply_and_save
from calltrack.tags import lookup_keys, lookup_row_value
from tracking.models import Handler, RoutingTable, RoutingTableRow

CSV_COLUMNS = ("value", "handler", "number")
BATCH = 1000


@transaction.atomic
def routing_table_create(*, fields: Mapping[str, Any]) -> RoutingTable:
    """Create a table after full validation (its campaign's routing configuration is stamped anew by a trigger)."""
    table = RoutingTable()
    for name, value in fields.items():
        setattr(table, name, value)
    table.full_clean()
    table.save()
    return table


@transaction.atomic
def routing_table_update(*, routing_table: RoutingTable, fields: Mapping[str, Any]) -> RoutingTable:
    """Change the given fields (saving only those)."""
    instance_apply_and_save(instance=routing_table, fields=fields)
    return routing_table


@transaction.atomic
def routing_table_delete(*, routing_table: RoutingTable) -> None:
    """Delete a table with its rows."""
    routing_table.delete()


class RowsError(ValueError):
    """Bad lines in an import: ``problems`` lists (line, column, reason); nothing was written."""

    def __init__(self, problems: list[tuple[int, str, str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"line {n}, {col}: {why}" for n, col, why in problems[:20]))


@dataclass
class RowsResult:
    written: int = 0
    deleted: int = 0
    skipped: list[tuple[int, str, str]] = field(default_factory=list)


def _handler_index() -> dict[str, int]:
    """Handlers by id, buyer id and name (lower-case), for the CSV's handler column."""
    index: dict[str, int] = {}
    for pk, buyer, name in Handler.objects.values_list("pk", "buyer_id", "name"):
        index.setdefault(name.strip().lower(), pk)
        if buyer:
            index[buyer.strip().lower()] = pk
        index[str(pk)] = pk
    return index


def routing_table_rows_import(
    *, table: RoutingTable, lines: Iterable[tuple[int, Mapping[str, str]]], replace: bool = False, skip_invalid: bool = False,
    progress: Callable[[int], None] | None = None,
) -> RowsResult:
    """Write rows ``{value, handler, number}`` into ``table`` (a value already there is updated: idempotent).

    ``lines`` pairs each row with the number its problems are reported under (a CSV file's line, an API row).

    Every line is checked first; with bad lines nothing is written (``RowsError``) unless ``skip_invalid``.
    ``replace`` first deletes the table's rows, in the same transaction. Rows are written in batches of 1,000
    (one INSERT ... ON CONFLICT UPDATE each); ``progress(n)`` is told after each batch.
    """
    handlers = _handler_index()
    rows: dict[str, RoutingTableRow] = {}
    problems: list[tuple[int, str, str]] = []
    for n, line in lines:
        # Undo the export's formula neutralising ("'=x" was written for "=x"), so an export re-imports unchanged.
        raw_value = csv_unsafe((line.get("value") or "").strip())
        if "\x00" in raw_value or len(raw_value) > 200 or not raw_value:
            problems.append((n, "value", "give a value of 1-200 characters"))
            continue
        value = lookup_row_value(table.tag_key, raw_value)
        if not value:
            problems.append((n, "value", f"give {len(lookup_keys(table.tag_key))} values, | between (e.g. co|google)"))
            continue
        who = csv_unsafe((line.get("handler") or "").strip()).lower()
        number_text = csv_unsafe((line.get("number") or "").strip())
        handler_id = handlers.get(who) if who else None
        if who and handler_id is None:
            problems.append((n, "handler", f"no handler with id, buyer id or name {who!r}"))
            continue
        number = ""
        if number_text:
            try:
                number = phone.to_e164(number_text)
            except (phone.InvalidPhoneNumber, ValidationError) as exc:
                problems.append((n, "number", str(exc)))
                continue
        if bool(handler_id) == bool(number):
            problems.append((n, "handler", "give a handler or a number (one of the two)"))
            continue
        rows[value] = RoutingTableRow(table=table, value=value, handler_id=handler_id, number=number)
    if problems and not skip_invalid:
        raise RowsError(problems)
    result = RowsResult(skipped=problems)
    with transaction.atomic():
        if replace:
            result.deleted, _ = RoutingTableRow.objects.filter(table=table).delete()
        batch = list(rows.values())
        for start in range(0, len(batch), BATCH):
            chunk = batch[start:start + BATCH]
            RoutingTableRow.objects.bulk_create(
                chunk, update_conflicts=True, unique_fields=["table", "value"], update_fields=["handler", "number"],
            )
            result.written += len(chunk)
            if progress is not None:
                progress(result.written)
    return result


def routing_table_rows_export(*, table: RoutingTable) -> Iterator[dict[str, str]]:
    """The table's rows as CSV lines (what the import reads back), in value order, streamed. A value a spreadsheet
    would run as a formula (``=HYPERLINK(...)``, ``@SUM(...)``) is neutralised (:func:`calltrack.csv_export.csv_safe`,
    as every export is); the import undoes it."""
    yield from (
        {"value": csv_safe(value), "handler": str(handler_id or ""), "number": csv_safe(number)}
        for value, handler_id, number in RoutingTableRow.objects.filter(table=table).order_by("value")
        .values_list("value", "handler_id", "number").iterator(chunk_size=2000)
    )
