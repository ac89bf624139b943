"""The figures of a set of calls, shared by the reporting selector (calltrack/reports.py) and the report
rollups (tracking/services/reports.py), so a day read from the rollups and a day read from the calls are
counted by the same expressions.

Outcomes (each call is in exactly one): answered (``answered_at`` set: a handler or a fallback picked up),
blocked (rejected by a number filter or the blocked-callers list), missed (ended without an answer), live
(still ringing or in progress).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.db.models import Case, CharField, Count, DecimalField, F, Q, QuerySet, Sum, TextField, Value, When
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast, Coalesce

from calltrack.scoping import Scope, side_field
from tracking.call_state import CallState

MONEY = DecimalField(max_digits=14, decimal_places=2)
CENTS = Decimal("0.01")

ANSWERED = Q(answered_at__isnull=False)
BLOCKED = Q(answered_at__isnull=True, status="rejected")
LIVE = Q(answered_at__isnull=True, status__in=("ringing", "in_progress"))
MISSED = Q(answered_at__isnull=True) & ~Q(status__in=("rejected", "ringing", "in_progress"))


def converted_q(scope: Scope) -> Q:
    """A conversion on the requester's side: a source's payout side, a handler's revenue side, either for staff."""
    return Q(**{side_field(scope, "converted"): True})


def call_aggregates(scope: Scope, where: Q, prefix: str = "") -> dict[str, Any]:
    converted = converted_q(scope)
    zero = Value(Decimal("0"), output_field=MONEY)
    return {
        f"{prefix}calls": Count("id", filter=where),
        f"{prefix}answered": Count("id", filter=where & ANSWERED),
        f"{prefix}missed": Count("id", filter=where & MISSED),
        f"{prefix}blocked": Count("id", filter=where & BLOCKED),
        f"{prefix}live": Count("id", filter=where & LIVE),
        f"{prefix}converted": Count("id", filter=where & converted),
        f"{prefix}failsafe": Count("id", filter=where & Q(used_failsafe=True)),
        f"{prefix}talk_time": Coalesce(Sum("talk_time", filter=where & ANSWERED), 0),
        f"{prefix}revenue": Coalesce(Sum("revenue", filter=where), zero, output_field=MONEY),
        f"{prefix}payout": Coalesce(Sum("payout", filter=where), zero, output_field=MONEY),
    }


COUNTS = ("calls", "answered", "missed", "blocked", "live", "converted", "failsafe", "talk_time")
MEASURES = (*COUNTS, "revenue", "payout")

PARTY_KEY = {
    "source": "source_id",
    "campaign": "campaign_id",
    "handler": "handler_id",
    "tracking_number": "tracking_number_id",
    "pool": "tracking_number__pool_id",
}

#: Breakdowns kept in the rollups (the pool is not: a number may move to another pool, and the breakdown by pool
#: follows the number, so it is always read from the calls).
ROLLUP_DIMS = ("source", "campaign", "handler", "tracking_number", "caller_state", "utm_source", "utm_medium", "utm_campaign")


#: The handler breakdown's key of calls answered through the fallback chain and credited to no handler (the campaign's
#: "credit fallback answers to handlers"): they show as their own row, not among the calls without a handler.
FALLBACK_KEY = "fallback"


#: The calls of that row: answered through the fallback chain, with no handler credited.
FALLBACK_ANSWERED = Q(handler_id__isnull=True, answered_at__isnull=False) & ~Q(fallback_step="")


def dimension_key(by: str) -> Any:
    """The ORM expression of a breakdown's key on the calls table."""
    if by == "handler":
        return Case(When(FALLBACK_ANSWERED, then=Value(FALLBACK_KEY)), default=Cast("handler_id", CharField()), output_field=CharField())
    if by in PARTY_KEY:
        return F(PARTY_KEY[by])
    if by == "caller_state":
        return F("caller_state")
    return KeyTextTransform(by, "marketing_data")


def key_text(value: Any) -> str:
    return "" if value is None else str(value)


#: Marketing values the reports break down by (keys of ``Call.marketing_data``).
MARKETING_DIMS = ("utm_source", "utm_medium", "utm_campaign")


def marketing_text(key: str) -> Any:
    """A marketing value as text, the way a breakdown row's key reads it (a number as its digits, on either
    database): what the call log's marketing filters compare, so that a row's link finds the row's calls."""
    return Cast(KeyTextTransform(key, "marketing_data"), TextField())


#: The rollups' pseudo-dimension counting, per handler, the calls routing skipped it for at a cap.
CAPPED_DIM = "capped_handler"


def capped_counts(calls: QuerySet) -> dict[int, int]:
    """Per handler id, how many of ``calls`` skipped it because a cap was reached (the decision's skips).
    The calls whose decision mentions a cap are found by a text match, on either database."""
    decisions = capped_decisions(calls)
    hits: dict[int, int] = {}
    for decision in decisions.iterator(chunk_size=2000):
        for handler_id in CallState.from_json(decision).capped_handler_ids():
            hits[handler_id] = hits.get(handler_id, 0) + 1
    return hits


def capped_counts_by_account(calls: QuerySet) -> dict[tuple[int | None, int], int]:
    """:func:`capped_counts` per (account id, handler id): the rollups keep each account's apart."""
    hits: dict[tuple[int | None, int], int] = {}
    rows = capped_decisions(calls).values_list("account_id", "decision")
    for account_id, decision in rows.iterator(chunk_size=2000):
        for handler_id in CallState.from_json(decision).capped_handler_ids():
            hits[(account_id, handler_id)] = hits.get((account_id, handler_id), 0) + 1
    return hits


def capped_decisions(calls: QuerySet) -> QuerySet:
    """The decisions of the ``calls`` that mention a cap. On PostgreSQL the partial index ``call_capped_started``
    (migration tracking 0035) has this text match as its predicate, word for word: change both together."""
    return calls.annotate(text=Cast("decision", TextField())).filter(text__contains='"capped"').values_list("decision", flat=True)
