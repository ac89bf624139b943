"""Reading the money audit trail (``tracking.MoneyChange``) for the admin's pages and the API.

What a collaborator may see is decided in ``calltrack.scoping`` (``visible_money_changes``, ``hidden_call_fields``);
this module only leaves out the columns it is told are hidden, and a change left with nothing to show.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import models
from django.utils.dateparse import parse_datetime

from tracking.models import Call, CampaignHandler, ConversionRule, Handler, MoneyChange, Source, Webhook
from tracking.models.audit import AUDITED_TABLES, MASKED_COLUMNS, AuditOrigin

_MODELS: dict[str, type[models.Model]] = {
    "call": Call, "handler": Handler, "source": Source, "campaignhandler": CampaignHandler,
    "conversionrule": ConversionRule, "webhook": Webhook,
}

#: The most changes a page or an API answer shows (newest first); older ones stay in the table.
HISTORY_LIMIT = 200


@dataclass(frozen=True)
class ChangedValue:
    field: str
    label: str
    before: Any
    after: Any

    @property
    def before_text(self) -> str:
        return _text(self.before)

    @property
    def after_text(self) -> str:
        return _text(self.after)


@dataclass(frozen=True)
class HistoryEntry:
    id: int
    at: datetime
    table: str
    object_id: int
    op: str
    origin: str
    origin_label: str
    user_id: int | None
    actor: str
    values: list[ChangedValue]

    @property
    def table_label(self) -> str:
        """The kind of row, in the operator's words (the party words follow the vocabulary)."""
        return str(dict(AUDITED_TABLES).get(self.table, self.table))


def _field(table: str, column: str) -> models.Field | None:
    model = _MODELS.get(table)
    if model is None:
        return None
    try:
        field = model._meta.get_field(column[:-3] if column.endswith("_id") else column)
    except Exception:  # noqa: BLE001 - a column of an older schema: shown as stored
        return None
    return field if isinstance(field, models.Field) else None


def _value(field: models.Field | None, raw: Any, *, masked: bool) -> Any:
    """The stored JSON value as the API gives it: amounts as strings with two decimals, booleans as booleans
    (SQLite stores 0/1), datetimes in ISO 8601, a masked column as its fingerprint."""
    if raw is None:
        return None
    if masked:
        return f"fingerprint {raw}"
    if isinstance(field, models.BooleanField):
        return bool(raw)
    if isinstance(field, models.DecimalField):
        try:
            return f"{Decimal(str(raw)):.2f}"
        except InvalidOperation:
            return str(raw)
    if isinstance(field, models.DateTimeField) and isinstance(raw, str):
        parsed = parse_datetime(raw.replace(" ", "T"))
        if parsed is not None and parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return parsed.isoformat() if parsed is not None else raw
    return raw


def _text(value: Any) -> str:
    if value is None or value == "":
        return "–"
    if value is True:
        return "yes"
    if value is False:
        return "no"
    return str(value)


def history_entries(changes: models.QuerySet, *, hidden: frozenset[str] = frozenset()) -> list[HistoryEntry]:
    """The newest ``HISTORY_LIMIT`` changes of ``changes``, with the changed values (``hidden`` columns left out;
    a change with nothing else left is not listed)."""
    out = []
    origins = dict(AuditOrigin.choices)
    for change in changes.order_by("-at", "-id")[:HISTORY_LIMIT]:
        values = []
        for column, before, after in change.changes(hidden=hidden):
            field = _field(change.table, column)
            masked = f"{change.table}.{column}" in MASKED_COLUMNS
            values.append(ChangedValue(
                field=column, label=str(field.verbose_name) if field is not None else column,
                before=_value(field, before, masked=masked), after=_value(field, after, masked=masked),
            ))
        if not values:
            continue
        out.append(HistoryEntry(
            id=change.pk, at=change.at, table=change.table, object_id=change.object_id, op=change.op,
            origin=change.origin, origin_label=str(origins.get(change.origin, change.origin)),
            user_id=change.user_id, actor=change.actor, values=values,
        ))
    return out


def call_history(call_id: int, *, hidden: frozenset[str] = frozenset()) -> list[HistoryEntry]:
    return history_entries(MoneyChange.objects.of("call", call_id), hidden=hidden)


def handler_terms_history(handler_id: int) -> list[HistoryEntry]:
    """The handler's terms: its own row, its places in campaigns, its own conversion rules."""
    return history_entries(MoneyChange.objects.of_handler_terms(handler_id))


def object_history(table: str, object_id: int) -> list[HistoryEntry]:
    return history_entries(MoneyChange.objects.of(table, object_id))
