"""The voice webhooks' occasional reads and writes, through the ORM: what a decision needs off the hot path's
one-statement loads (``routing.store.voice``). Each function is one query (or one savepoint and an INSERT)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from django.db import IntegrityError, transaction
from django.db.models import Case, Max, OuterRef, Q, Subquery, When

from calltrack import fastdb
from calltrack.numbers.models import BlockedCaller, ReceivingNumber
from routing.decision import CallerHistory
from tracking.models import AttemptKind, Call, CallAttempt, Contact, Handler, RoutingTableRow


def call_by_sid(call_sid: str) -> Call | None:
    return Call.objects.filter(call_sid=call_sid).first()


def call_insert_or_existing(call: Call) -> Call | None:
    """INSERT ``call`` in a savepoint; when its CallSid exists already (a retried or racing delivery: the unique
    index decides), nothing is written and the existing call is returned."""
    try:
        with transaction.atomic():
            fastdb.insert(call)
    except IntegrityError:
        return Call.objects.get(call_sid=call.call_sid)
    return None


def blocked_caller(number: str, *, campaign_id: int, account_id: int | None) -> BlockedCaller | None:
    """The block list's entry for ``number`` everywhere in the account or in the campaign, if any."""
    return (BlockedCaller.objects.filter(number=number)
            .filter(Q(campaign__isnull=True, account_id=account_id) | Q(campaign_id=campaign_id)).first())


def calls_from_caller(number: str, *, since: datetime, until: datetime, limit: int, account_id: int | None) -> int:
    """How many calls ``number`` made (to any campaign of the account) from ``since`` up to ``until``, counted up to
    ``limit``: the spam score's repeat-dialer count (another account's calls tell this one nothing). One query over
    the (caller_number, started_at) index, bounded by ``limit`` whatever the number's history."""
    return Call.objects.filter(caller_number=number, started_at__gte=since, started_at__lte=until,
                               account_id=account_id)[:limit].count()


def receiving_number_exists(number: str) -> str | None:
    """``number`` when it is one of our receiving numbers."""
    return ReceivingNumber.objects.filter(number=number).values_list("number", flat=True).first()


def routing_table_row(table_id: int, value: str) -> tuple[int | None, str] | None:
    """The lookup table's row for ``value``: (handler id, number)."""
    return RoutingTableRow.objects.filter(table_id=table_id, value=value).values_list("handler_id", "number").first()


def attempt_for_whisper(attempt_id: int) -> CallAttempt:
    """A leg answering, with what its whisper says (the call's campaign, source and tracking number, the line)."""
    return CallAttempt.objects.select_related(
        "call__campaign", "call__source", "call__tracking_number", "receiving_number", "handler").get(pk=attempt_id)


def line_load(receiving_number_id: int | None, *, campaign_id: int | None) -> tuple[int, int | None]:
    """A tail number's ring timeout and the handler whose line it is (the campaign's first), if any. One query."""
    if receiving_number_id is None:
        return 30, None
    owner = Handler.objects.filter(receiving_number_id=OuterRef("pk")).annotate(
        elsewhere=Case(When(campaign_handlers__campaign_id=campaign_id, then=0), default=1)).order_by("elsewhere", "pk")
    row = ReceivingNumber.objects.filter(pk=receiving_number_id).annotate(owner=Subquery(owner.values("pk")[:1])) \
        .values_list("ring_timeout", "owner").first()
    return ((row[0] or 30), row[1]) if row else (30, None)


def receiving_number_load(receiving_number_id: int) -> ReceivingNumber | None:
    """A receiving number with where its no-answer setting forwards."""
    return ReceivingNumber.objects.select_related("no_answer_forward_to").filter(pk=receiving_number_id).first()


def last_sequence(call: Call) -> int:
    """The highest dial sequence among the call's legs (0: none), a queue dial's included."""
    return call.attempts.order_by("-sequence").values_list("sequence", flat=True).first() or 0


def numbers_dialed(call: Call) -> list[str]:
    return list(call.attempts.values_list("number_dialed", flat=True))


def last_line_dialed(call: Call) -> ReceivingNumber | None:
    """The receiving number of the call's last handler leg (or no-answer forward), with its forward number."""
    last = (
        call.attempts.filter(kind__in=[AttemptKind.HANDLER, AttemptKind.NO_ANSWER_FORWARD], receiving_number__isnull=False)
        .select_related("receiving_number__no_answer_forward_to").order_by("-sequence", "-id").first()
    )
    return last.receiving_number if last else None


def contact_load(number: str, *, account_id: int | None) -> Contact | None:
    """The caller's contact record in the call's account, with its assigned agent."""
    return Contact.objects.filter(phone_number=number, account_id=account_id).select_related("assigned_agent").first()


def caller_history_load(call: Call, *, handler_ids: Iterable[int], since: datetime) -> dict[int, CallerHistory]:
    """For duplicate-call routing: this caller's calls since ``since`` with each of ``handler_ids`` (whatever the
    campaign), as when the latest one it answered and the latest one it converted (revenue side) started. One query
    on the (caller, started_at) index for all the handlers; test calls and this call do not count."""
    rows = (
        Call.objects.filter(caller_number=call.caller_number, started_at__gte=since, handler_id__in=list(handler_ids), is_test=False)
        .exclude(pk=call.pk).order_by().values("handler_id")
        .annotate(answered=Max("started_at", filter=Q(answered_at__isnull=False)), converted=Max("started_at", filter=Q(revenue_converted=True)))
    )
    return {r["handler_id"]: CallerHistory(r["answered"], r["converted"]) for r in rows if r["answered"] or r["converted"]}
