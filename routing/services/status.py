"""Twilio's callbacks about legs and calls: dial results, leg status, the call's status (order-proof, idempotent)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime

from django.utils import timezone

from routing import decision as dec
from routing import twiml
from routing.services.common import (
    _STATUS_RANK,
    TWILIO_CALL_STATUS,
    TWILIO_DIAL_STATUS,
    ParamError,
    duration_seconds,
)
from routing.services.config import campaign_conversion_rules
from routing.services.plan import plan_advance
from routing.services.queue import queue_caller_gone, queue_offer, queue_offer_ended
from routing.services.slots import answerer, call_answer, credited_handler, leg_answer
from routing.services.turn import Turn
from routing.store import voice as store
from tracking.models import AttemptKind, AttemptStatus, Call, CallStatus
from tracking.services.conversions import (
    OUTCOME_FIELDS,
    call_conversion_evaluate,
    call_conversion_settle_in_memory,
    conversion_announcement,
    conversion_needs_no_statement,
)

log = logging.getLogger("calltrack.routing")


def attempt_status_record(turn: Turn, *, attempt_id: int, status: str, duration: int = 0) -> None:
    """A dialled leg's own status callback (answered / completed / busy ...). Idempotent: answered marks the
    leg answered once; an end releases the slot once (whichever of this and the dial result comes first).
    A handler's answered leg that ends (this callback, not the dial result: one trigger) frees the handler: the
    next caller waiting in the campaign's queue is offered to them (``routing.services.queue``); a queue dial not answered frees its caller."""
    attempt = store.attempt_load(attempt_id)
    if attempt is None:
        raise LookupError(f"no attempt {attempt_id}")
    turn.owned(attempt.call.account_id)
    at = timezone.now()
    queue = attempt.kind == AttemptKind.QUEUE
    if status in ("answered", "in-progress"):
        # A queue dial's line answering says nothing of who it takes: its <Queue url> says (queue_bridge_record).
        if not queue:
            leg_answer(turn, attempt.call, attempt, at)
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
    store.leg_end(attempt.pk, status=mapped, duration=duration, answered=was_answered, at=at)
    if attempt.kind == AttemptKind.QUEUE and not was_answered:
        queue_offer_ended(attempt_id=attempt.pk, answered=False)
    elif was_answered and attempt.handler_id and attempt.call.campaign_id:
        queue_offer(turn, handler_id=attempt.handler_id, campaign_id=attempt.call.campaign_id)


def dial_result_answer(turn: Turn, *, seq: int, dial_status: str, duration: int) -> str:
    """The ``<Dial action>`` of step ``seq``: record the attempts and answer with the next step.

    Answered: the leg that answered is completed with its duration, the others (ring-all) are cancelled;
    the call ends when the parties hang up. Not answered: the slots are released (and uncounted) and the
    next step of the plan, the no-answer routing, the fallback chain or the message follows. A retried
    request gets the stored answer.
    """
    call = turn.the_call
    key = f"dial:{seq}"
    stored = turn.stored_answer(key)
    if stored:
        return stored
    attempts = store.step_attempts_load(call.pk, seq)
    if not attempts:
        raise LookupError(f"call {call.call_sid} has no attempt {seq}")
    at = timezone.now()
    answered = dial_status in ("completed", "answered")
    status = TWILIO_DIAL_STATUS.get(dial_status, AttemptStatus.FAILED)
    if answered:
        winner = next((a for a in attempts if a.status in (AttemptStatus.ANSWERED, AttemptStatus.COMPLETED)), attempts[0])
        # The leg that answered is completed with its duration, the others (ring-all) cancelled: written with the
        # call's answer. A test call's legs stay uncounted.
        legs = store.StepAnswered(call_id=call.pk, seq=seq, winner_id=winner.pk, duration=duration, at=at,
                                  counted=not call.is_test and (credited_handler(winner) is not None or winner.handler_id is None))
        call_answer(turn, call, winner, at, step=legs)
        call.handler_id = credited_handler(winner) or call.handler_id
        who = answerer(winner)
        _skip_plan_rest(turn, dec.ANSWERED, f"{who} answered first")
        turn.step("attempt.completed", f"{who} talked {duration}s",
                  {"attempt": winner.pk, "duration": duration, "fallback_step": call.fallback_step if winner.kind == AttemptKind.FALLBACK else ""})
        # talk_time is added in SQL: the call row may have moved since it was read (its status callback).
        call.talk_time += duration
        turn.save(add={"talk_time": duration})
        return turn.answer(key, twiml.hangup(), "handler")
    store.step_legs_unanswered(call.pk, seq, status=status, at=at)
    who = ", ".join(str(a.handler or a.number_dialed) for a in attempts)
    turn.step("attempt.ended", f"{who}: {status.label.lower()}", {"sequence": seq, "status": dial_status})
    if dial_status == "canceled":  # the caller hung up while it rang: nothing more to dial
        _skip_plan_rest(turn, dec.HUNG_UP, "the caller hung up before it was dialled")
        return turn.answer(key, twiml.hangup())
    return plan_advance(turn, answer_key=key)


def _skip_plan_rest(turn: Turn, reason: str, detail: str) -> None:
    """The handlers of the plan not dialled (the call was answered, or the caller hung up): in the explanation
    with that reason, once (the plan index moves past them)."""
    state = turn.state
    state.skip(dec.plan_rest(state, reason=reason, detail=detail))
    state.plan_index = max(state.plan_index, len(state.steps))


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


def call_status_record(turn: Turn, *, params: Mapping[str, str]) -> Call | None:
    """Twilio's status callback for the call. Idempotent and order-proof: a callback older than the last one
    applied (``SequenceNumber``, else ``Timestamp``) or one that would move the call back from a final state
    changes nothing. A final status releases every slot the call still holds and announces ``call.completed``
    once (a conditional UPDATE decides who announces)."""
    sid = (params.get("CallSid") or "").strip()
    call = store.call_load_locked(sid)
    if call is None:
        raise LookupError(f"no call {sid!r}")
    turn.bind(call)
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
    if not store.call_end(call.pk, status=new, at=at, duration=duration, seq=seq):
        return call
    call.status, call.ended_at, call.duration = new, at, duration
    if seq is not None:
        call.last_sequence = seq
    if call.state_queue is not None:  # a caller who waited in the queue: only they cost this statement
        queue_caller_gone(turn, at=at)
    turn.notify("call.completed", f"call ended: {call.get_status_display().lower()}, {duration}s", {"status": new, "duration": duration})
    # In the same transaction: the ``call.completed`` webhooks, queued after the commit, carry the outcome, revenue and payout.
    call_conversion_decide(turn, call, at=at)
    return call


def call_conversion_decide(turn: Turn, call: Call, *, at: datetime) -> None:
    """The campaign's conversion rules on the call that just ended (read under its row lock where the database locks
    rows; its rules as of the campaign row read with it, cached per configuration version).

    Decided with the pure rule evaluation on the call itself when it needs nothing more from the database (a
    handler on the call, no de-dupe window: ``conversion_needs_no_statement``): the outcome is then set on the call and
    saved with the turn's writes. Otherwise (earlier calls to read, locks to take) in a savepoint that writes it at
    once. Either way a failure of the rules is logged and leaves the call unevaluated; the call's end still commits."""
    rules = campaign_conversion_rules(call.campaign) if call.campaign is not None else ()
    try:
        if conversion_needs_no_statement(call, rules):
            before = [getattr(call, name) for name in OUTCOME_FIELDS]  # put back if the rules fail half-way
            try:
                newly = call_conversion_settle_in_memory(call=call, rules=rules, at=at)
            except Exception:
                for name, value in zip(OUTCOME_FIELDS, before, strict=True):
                    setattr(call, name, value)
                raise
            if newly is None:
                return
            turn.save(*OUTCOME_FIELDS)
            if newly:
                message, data = conversion_announcement(call, newly, source="rules")
                turn.notify("call.converted", message, data)
            return
        # In its own savepoint (``call_conversion_evaluate``): rolled back alone if the rules fail.
        evaluated = call_conversion_evaluate(call=call, at=at, locked=store.rows_lock(), rules=rules)
    except Exception:  # noqa: BLE001 - the rules must not cost the call its end
        log.exception("conversion rules failed for call %s", call.pk)
        return
    for name in OUTCOME_FIELDS:
        setattr(call, name, getattr(evaluated, name))
