"""Twilio's callbacks about legs and calls: dial results, leg status, the call's status (order-proof, idempotent)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from django.db import connection
from django.utils import timezone

from calltrack import fastdb
from routing import decision as dec
from routing import twiml
from routing.services.common import (
    _STATUS_RANK,
    FINAL_STATUSES_SQL,
    TWILIO_CALL_STATUS,
    TWILIO_DIAL_STATUS,
    Links,
    ParamError,
    answer_store,
    duration_seconds,
)
from routing.services.config import campaign_conversion_rules, campaign_webhook_events
from routing.services.plan import plan_advance
from routing.services.queue import queue_caller_gone, queue_offer, queue_offer_ended
from routing.services.slots import answerer, attempt_mark_answered, credited_handler
from tracking.models import (
    AttemptKind,
    AttemptStatus,
    Call,
    CallAttempt,
    CallStatus,
    Campaign,
    Handler,
)
from tracking.services.call_events import call_event_record, call_fields_save_with_steps, call_lifecycle_notify


def attempt_status_record(*, attempt_id: int, status: str, duration: int = 0, links: Links | None = None) -> None:
    """A dialled leg's own status callback (answered / completed / busy ...). Idempotent: answered marks the
    leg answered once; an end releases the slot once (whichever of this and the dial result comes first).
    A handler's answered leg that ends (this callback, not the dial result: one trigger) frees the handler: the
    next caller waiting in the campaign's queue is offered to them (``routing.services.queue``, given ``links``); a queue dial not answered frees its caller."""
    found = _ATTEMPT.fetch([attempt_id])
    if found is None:
        raise LookupError(f"no attempt {attempt_id}")
    attempt = found[0]
    at = timezone.now()
    queue = attempt.kind == AttemptKind.QUEUE
    if status in ("answered", "in-progress"):
        # A queue dial's line answering says nothing of who it takes: its <Queue url> says (queue_bridge_record).
        if not queue:
            attempt_mark_answered(attempt.call, attempt, at)
        return
    mapped = TWILIO_DIAL_STATUS.get(status)
    if mapped is None:
        return  # initiated / ringing: nothing to record
    if queue:
        # Bridged to a caller or not: the handler may have answered a line on which nobody was left waiting.
        was_answered = attempt.status in (AttemptStatus.ANSWERED, AttemptStatus.COMPLETED)
        if mapped == AttemptStatus.COMPLETED and not was_answered:
            mapped = AttemptStatus.CANCELED
    else:
        was_answered = attempt.status in (AttemptStatus.ANSWERED, AttemptStatus.COMPLETED) or mapped == AttemptStatus.COMPLETED
    with fastdb.fixed_cursor() as cursor:
        # The leg's end is recorded once (the first of this and the dial result); its slot is released in any case.
        cursor.execute(
            f"UPDATE {CallAttempt._meta.db_table} SET "
            "status = CASE WHEN ended_at IS NULL THEN %s ELSE status END, "
            "duration = CASE WHEN ended_at IS NULL THEN %s ELSE duration END, "
            "counted = CASE WHEN ended_at IS NULL AND NOT %s THEN %s ELSE counted END, "
            "ended_at = COALESCE(ended_at, %s), holds_slot = %s "
            "WHERE id = %s AND (ended_at IS NULL OR holds_slot)",
            [mapped, duration, was_answered, False, at, False, attempt.pk],
        )
    if attempt.kind == AttemptKind.QUEUE and not was_answered:
        queue_offer_ended(attempt_id=attempt.pk, answered=False)
    elif was_answered and links is not None and attempt.handler_id and attempt.call.campaign_id:
        queue_offer(handler_id=attempt.handler_id, campaign_id=attempt.call.campaign_id, links=links)


_ATTEMPT = fastdb.JoinedLoader(CallAttempt, {"call": Call, "handler": Handler}, where="callattempt.id = %s")


def dial_result_answer(*, call: Call, seq: int, dial_status: str, duration: int, links: Links) -> str:
    """The ``<Dial action>`` of step ``seq``: record the attempts and answer with the next step.

    Answered: the leg that answered is completed with its duration, the others (ring-all) are cancelled;
    the call ends when the parties hang up. Not answered: the slots are released (and uncounted) and the
    next step of the plan, the no-answer routing, the fallback chain or the message follows. A retried
    request gets the stored answer.
    """
    key = f"dial:{seq}"
    stored = call.decision.get("answers", {}).get(key)
    if stored:
        return stored
    attempts = [a for a, _ in _STEP_ATTEMPTS.fetch_all([call.pk, seq])]
    if not attempts:
        raise LookupError(f"call {call.call_sid} has no attempt {seq}")
    at = timezone.now()
    answered = dial_status in ("completed", "answered")
    status = TWILIO_DIAL_STATUS.get(dial_status, AttemptStatus.FAILED)
    table = CallAttempt._meta.db_table
    if answered:
        winner = next((a for a in attempts if a.status in (AttemptStatus.ANSWERED, AttemptStatus.COMPLETED)), attempts[0])
        # The leg that answered is completed with its duration; the others (ring-all) were cancelled. In the same
        # statement as the call's answer on PostgreSQL. A test call's legs stay uncounted (no attempt has id 0).
        legs = (
            f"UPDATE {table} SET status = CASE WHEN id = %s THEN %s ELSE %s END, "
            "duration = CASE WHEN id = %s THEN %s ELSE duration END, ended_at = %s, holds_slot = %s, counted = (id = %s AND %s) "
            "WHERE call_id = %s AND sequence = %s",
            [winner.pk, AttemptStatus.COMPLETED, AttemptStatus.CANCELED, winner.pk, duration, at, False,
             0 if call.is_test else winner.pk, credited_handler(winner) is not None or winner.handler_id is None, call.pk, seq],
        )
        attempt_mark_answered(call, winner, at, leg=False, legs_sql=legs)
        call.talk_time += duration
        call.handler_id = credited_handler(winner) or call.handler_id
        who = answerer(winner)
        _skip_plan_rest(call, dec.ANSWERED, f"{who} answered first")
        call_event_record(call=call, kind="attempt.completed", message=f"{who} talked {duration}s",
                          data={"attempt": winner.pk, "duration": duration, "fallback_step": call.fallback_step if winner.kind == AttemptKind.FALLBACK else ""})
        call.decision.setdefault("answers", {})[key] = answer = twiml.hangup()
        # With the request's timeline steps (one statement); talk_time is added in SQL: the call row may have moved
        # since it was read (its status callback).
        call_fields_save_with_steps(call, ["decision", "handler"], add={"talk_time": duration})
        return answer
    with fastdb.fixed_cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET status = %s, ended_at = %s, holds_slot = %s, counted = %s WHERE call_id = %s AND sequence = %s",
            [status, at, False, False, call.pk, seq],
        )
    who = ", ".join(str(a.handler or a.number_dialed) for a in attempts)
    call_event_record(call=call, kind="attempt.ended", message=f"{who}: {status.label.lower()}", data={"sequence": seq, "status": dial_status})
    if dial_status == "canceled":  # the caller hung up while it rang: nothing more to dial
        _skip_plan_rest(call, dec.HUNG_UP, "the caller hung up before it was dialled")
        return answer_store(call, key, twiml.hangup())
    return plan_advance(call=call, links=links, answer_key=key)


def _skip_plan_rest(call: Call, reason: str, detail: str) -> None:
    """The handlers of the plan not dialled (the call was answered, or the caller hung up): in the explanation
    with that reason, once (the plan index moves past them)."""
    steps = call.decision.get("steps", [])
    rest = dec.plan_rest(call.decision, plan_index=call.plan_index, reason=reason, detail=detail)
    if rest:
        call.decision.setdefault("skipped", []).extend(s.as_json() for s in rest)
    call.plan_index = max(call.plan_index, len(steps))


_STEP_ATTEMPTS = fastdb.JoinedLoader(CallAttempt, {"handler": Handler}, where="callattempt.call_id = %s AND callattempt.sequence = %s",
                                     order_by="callattempt.id")


def _sequence(params: Mapping[str, str]) -> int | None:
    raw = (params.get("SequenceNumber") or "").strip()
    if raw.isdigit():
        return int(raw)
    stamp = (params.get("Timestamp") or "").strip()
    if stamp:
        from email.utils import parsedate_to_datetime

        try:
            return int(parsedate_to_datetime(stamp).timestamp())
        except (TypeError, ValueError):
            return None
    return None


# Locked (its row only): a final status ends the call and runs the conversion rules on this instance.
_CALL_BY_SID = fastdb.JoinedLoader(Call, {"campaign": Campaign}, where="call.call_sid = %s", lock=True)


def _call_end(call: Call, *, status: str, at: datetime, duration: int, seq: int | None) -> bool:
    """Move the call to its final ``status`` unless it is final already or the callback is older than the
    last one applied (the instance follows when it moved); when it moved, end its attempts too (see
    ``_ATTEMPTS_END``). One constant statement on PostgreSQL (the status callback is on every call's path):
    the call's UPDATE as a data-modifying WITH, the attempts' UPDATE reading its result; two elsewhere."""
    sql = f"UPDATE {Call._meta.db_table} SET status = %s, ended_at = %s, duration = %s"
    if seq is None:
        sql, params = sql + f" WHERE id = %s AND status NOT IN ({FINAL_STATUSES_SQL})", [status, at, duration, call.pk]
    else:
        sql = sql + f", last_sequence = %s WHERE id = %s AND status NOT IN ({FINAL_STATUSES_SQL}) AND last_sequence < %s"
        params = [status, at, duration, seq, call.pk, seq]
    with fastdb.fixed_cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                f"WITH ended AS ({sql} RETURNING id), attempts AS ({_ATTEMPTS_END} AND call_id IN (SELECT id FROM ended)) "
                "SELECT COUNT(*) FROM ended",
                [*params, *_attempts_end_params(call, at)],
            )
            ended = cursor.fetchone()[0] > 0
        else:
            cursor.execute(sql, params)
            ended = cursor.rowcount > 0
            if ended:
                cursor.execute(_ATTEMPTS_END, _attempts_end_params(call, at))
    if ended:
        call.status, call.ended_at, call.duration = status, at, duration
        if seq is not None:
            call.last_sequence = seq
        if "queue" in call.decision:  # a caller who waited in the queue: only they cost this statement
            queue_caller_gone(call=call, at=at)
    return ended


# The call ended: legs still ringing were cancelled by the caller's hang-up (and are not counted), legs still
# open (answered) ended with the call, and every slot the call still holds is released.
_ATTEMPTS_END = (
    f"UPDATE {CallAttempt._meta.db_table} SET "
    "status = CASE WHEN ended_at IS NULL AND status = %s THEN %s WHEN ended_at IS NULL THEN %s ELSE status END, "
    "counted = CASE WHEN ended_at IS NULL AND status = %s THEN %s ELSE counted END, "
    "ended_at = COALESCE(ended_at, %s), holds_slot = %s "
    "WHERE call_id = %s AND (ended_at IS NULL OR holds_slot) "
    # A queue dial still ringing is the handler's own outbound call, not the caller's leg: it may yet take the next
    # caller waiting (its own status callback ends it).
    f"AND NOT (kind = '{AttemptKind.QUEUE}' AND status = '{AttemptStatus.DIALING}')"
)


def _attempts_end_params(call: Call, at: datetime) -> list[Any]:
    return [AttemptStatus.DIALING, AttemptStatus.CANCELED, AttemptStatus.COMPLETED, AttemptStatus.DIALING, False, at, False, call.pk]


def call_status_record(*, params: Mapping[str, str]) -> Call | None:
    """Twilio's status callback for the call. Idempotent and order-proof: a callback older than the last one
    applied (``SequenceNumber``, else ``Timestamp``) or one that would move the call back from a final state
    changes nothing. A final status releases every slot the call still holds and announces ``call.completed``
    once (a conditional UPDATE decides who announces)."""
    sid = (params.get("CallSid") or "").strip()
    found = _CALL_BY_SID.fetch([sid])
    call = found[0] if found else None
    if call is None:
        raise LookupError(f"no call {sid!r}")
    new = TWILIO_CALL_STATUS.get((params.get("CallStatus") or "").strip())
    if new is None:
        raise ParamError(f"CallStatus {params.get('CallStatus')!r} is not a Twilio call status")
    seq = _sequence(params)
    at = timezone.now()
    if new not in CallStatus.final():
        rank = _STATUS_RANK[new]
        fresh = Call.objects.filter(pk=call.pk).exclude(status__in=CallStatus.final())
        if seq is not None:
            fresh = fresh.filter(last_sequence__lt=seq)
        fresh = fresh.filter(status__in=[s for s, r in _STATUS_RANK.items() if r <= rank])
        fresh.update(status=new, **({"last_sequence": seq} if seq is not None else {}))
        return call
    duration = duration_seconds(params.get("CallDuration"))
    if not _call_end(call, status=new, at=at, duration=duration, seq=seq):
        return call
    campaign = call.campaign
    call_lifecycle_notify(call=call, event="call.completed", webhook_events=campaign_webhook_events(call), message=f"call ended: {call.get_status_display().lower()}, {duration}s",
                          data={"status": new, "duration": duration},
                          # Read under its row lock above where the database locks rows (SQLite: read again).
                          call_locked=connection.features.has_select_for_update,
                          # The rules as of the campaign row read with the call (cached per configuration version).
                          conversion_rules=campaign_conversion_rules(campaign) if campaign is not None else ())
    return call
