"""Twilio's callbacks about legs and calls: dial results, leg status, the call's status (order-proof, idempotent)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.db.models import Case, F, Q, Value, When
from django.db.models.functions import Coalesce
from django.utils import timezone

from calltrack import fastdb
from routing import twiml
from routing.services.common import _STATUS_RANK, TWILIO_CALL_STATUS, TWILIO_DIAL_STATUS, Links, ParamError, _store
from routing.services.config import _webhook_events
from routing.services.plan import _advance
from routing.services.slots import _mark_answered
from tracking.models import (
    AttemptStatus,
    Call,
    CallAttempt,
    CallStatus,
    Campaign,
)
from tracking.services.call_events import call_event_record, call_lifecycle_notify


def attempt_status_record(*, attempt_id: int, status: str, duration: int = 0) -> None:
    """A dialled leg's own status callback (answered / completed / busy ...). Idempotent: answered marks the
    leg answered once; an end releases the slot once (whichever of this and the dial result comes first)."""
    attempt = CallAttempt.objects.select_related("call", "handler").filter(pk=attempt_id).first()
    if attempt is None:
        raise LookupError(f"no attempt {attempt_id}")
    at = timezone.now()
    if status in ("answered", "in-progress"):
        _mark_answered(attempt.call, attempt, at)
        return
    mapped = TWILIO_DIAL_STATUS.get(status)
    if mapped is None:
        return  # initiated / ringing: nothing to record
    was_answered = attempt.status in (AttemptStatus.ANSWERED, AttemptStatus.COMPLETED) or mapped == AttemptStatus.COMPLETED
    updates: dict[str, Any] = {"holds_slot": False, "ended_at": at}
    if not was_answered:
        updates["counted"] = False
    CallAttempt.objects.filter(pk=attempt.pk, ended_at__isnull=True).update(status=mapped, duration=duration, **updates)
    CallAttempt.objects.filter(pk=attempt.pk, holds_slot=True).update(holds_slot=False)


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
    attempts = list(call.attempts.filter(sequence=seq).select_related("handler"))
    if not attempts:
        raise LookupError(f"call {call.call_sid} has no attempt {seq}")
    at = timezone.now()
    answered = dial_status in ("completed", "answered")
    status = TWILIO_DIAL_STATUS.get(dial_status, AttemptStatus.FAILED)
    if answered:
        winner = next((a for a in attempts if a.status in (AttemptStatus.ANSWERED, AttemptStatus.COMPLETED)), attempts[0])
        _mark_answered(call, winner, at)
        CallAttempt.objects.filter(pk=winner.pk).update(status=AttemptStatus.COMPLETED, duration=duration, ended_at=at, holds_slot=False, counted=True)
        others = [a.pk for a in attempts if a.pk != winner.pk]
        if others:
            CallAttempt.objects.filter(pk__in=others).update(status=AttemptStatus.CANCELED, ended_at=at, holds_slot=False, counted=False)
        call.refresh_from_db(fields=["answered_at", "handler", "status", "talk_time"])
        call.talk_time += duration
        call.handler_id = winner.handler_id or call.handler_id
        call_event_record(call=call, kind="attempt.completed", message=f"{winner.handler or winner.number_dialed} talked {duration}s",
                          data={"attempt": winner.pk, "duration": duration})
        return _store(call, key, twiml.hangup(), "talk_time", "handler")
    CallAttempt.objects.filter(pk__in=[a.pk for a in attempts]).update(status=status, ended_at=at, holds_slot=False, counted=False)
    who = ", ".join(str(a.handler or a.number_dialed) for a in attempts)
    call_event_record(call=call, kind="attempt.ended", message=f"{who}: {status.label.lower()}", data={"sequence": seq, "status": dial_status})
    if dial_status == "canceled":  # the caller hung up while it rang: nothing more to dial
        return _store(call, key, twiml.hangup())
    return _advance(call=call, links=links, answer_key=key)


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


_CALL_BY_SID = fastdb.JoinedLoader(Call, {"campaign": Campaign}, where="t0.call_sid = %s")


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
    fresh = Call.objects.filter(pk=call.pk).exclude(status__in=CallStatus.final())
    if seq is not None:
        fresh = fresh.filter(last_sequence__lt=seq)
    if new not in CallStatus.final():
        rank = _STATUS_RANK[new]
        fresh = fresh.filter(status__in=[s for s, r in _STATUS_RANK.items() if r <= rank])
        fresh.update(status=new, **({"last_sequence": seq} if seq is not None else {}))
        return call
    duration = int(params.get("CallDuration") or 0) if (params.get("CallDuration") or "").isdigit() else 0
    updates: dict[str, Any] = {"status": new, "ended_at": at, "duration": duration}
    if seq is not None:
        updates["last_sequence"] = seq
    if not fresh.update(**updates):
        return call
    # Legs still ringing were cancelled by the caller's hang-up; answered legs ended with the call.
    CallAttempt.objects.filter(call=call, ended_at__isnull=True, status=AttemptStatus.DIALING).update(
        status=AttemptStatus.CANCELED, ended_at=at, holds_slot=False, counted=False)
    CallAttempt.objects.filter(call=call).filter(Q(ended_at__isnull=True) | Q(holds_slot=True)).update(
        status=Case(When(ended_at__isnull=True, then=Value(AttemptStatus.COMPLETED)), default=F("status")),
        ended_at=Coalesce(F("ended_at"), Value(at)), holds_slot=False)
    for name, value in updates.items():
        setattr(call, name, value)
    call_lifecycle_notify(call=call, event="call.completed", webhook_events=_webhook_events(call), message=f"call ended: {call.get_status_display().lower()}, {duration}s",
                          data={"status": new, "duration": duration})
    return call
