"""Call queues: what a waiting caller hears, what happens when they leave the queue, and a freed handler's line
taking the next caller (``<Dial><Queue>`` on an outbound call through the carrier).

The caller is put in the queue by the dial plan (``plan_advance``) when every eligible handler is busy.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Max, Q
from django.utils import timezone

from calltrack.numbers.models import ReceivingNumber
from routing import decision as dec
from routing import twiml
from routing.services.calls import whisper_for
from routing.services.common import MAX_CALL_SECONDS, ParamError, campaign_voice
from routing.services.config import handler_option
from routing.services.plan import fallback_continue, queue_name
from routing.services.slots import call_answer, step_take
from routing.services.turn import Turn
from routing.store import lookups
from tracking.call_state import QueueStay
from tracking.models import AttemptKind, AttemptStatus, Call, CallAttempt, QueuedCall

log = logging.getLogger("calltrack.routing")

# Twilio's QueueResult values after which the caller continues down the fallback chain.
CONTINUE_RESULTS = frozenset({"leave", "redirected", "queue-full", "system-error", "error"})
QUEUE_RESULTS = CONTINUE_RESULTS | {"bridged", "bridging-in-process", "hangup"}


def queue_wait_answer(turn: Turn, *, position: int, queue_time: int) -> str:
    """The ``<Enqueue waitUrl>``: the message with the caller's position and the hold music while they may still
    wait; out of the queue to its result (``waited=``, read as QueueResult ``leave``) once they have waited the
    campaign's maximum, which continues the call down the fallback chain."""
    call, links = turn.the_call, turn.links
    campaign = call.campaign
    if campaign is None or queue_time >= campaign.queue_max_wait:
        return twiml.queue_leave(url=links.url("/voice/queue-result", call=call.pk, waited=queue_time))
    _offer_period_freed(turn)
    message = campaign.queue_message.replace("{position}", str(max(position, 1)))
    return twiml.queue_wait(message=message, music_url=campaign.queue_hold_music_url, voice=campaign_voice(campaign))


def _offer_period_freed(turn: Turn) -> None:
    """Handlers the caller waits for because their hour (day) ends within the wait: nothing ends a leg of theirs when
    it does, so the wait URL offers the queue to each whose period has ended since the caller was queued (under its
    lock: one still at a cap is not dialled)."""
    call, queued = turn.the_call, turn.state.queue
    if queued is None or call.campaign_id is None:
        return
    now = timezone.now()
    for handler_id, frees in dec.queue_frees(turn.state, at=now, max_wait=0).items():
        if frees > queued.at and QueuedCall.objects.filter(call=call, left_at__isnull=True, offered__isnull=True).exists():
            queue_offer(turn, handler_id=handler_id, campaign_id=call.campaign_id)


def queue_result_answer(turn: Turn, *, result: str, queue_time: int) -> str:
    """The ``<Enqueue action>``: the caller left the queue. Bridged (a handler took them) or hung up: the call is
    over. Left after the maximum wait, or the queue failed: on down the fallback chain. A retried request gets the
    stored answer."""
    call, state = turn.the_call, turn.state
    key = "queue-result"
    stored = turn.stored_answer(key)
    if stored:
        return stored
    now = timezone.now()
    QueuedCall.objects.filter(call=call, left_at__isnull=True).update(left_at=now, result=result[:20])
    state.queue = QueueStay(at=state.queue.at if state.queue is not None else int(now.timestamp()), result=result, seconds=queue_time)
    if result in CONTINUE_RESULTS:
        # Queue dials offered meanwhile took sequences of this call (``queue_offer``, in another webhook's turn): the
        # chain's next leg comes after them, so its dial result never reads one of theirs as its own.
        state.dials = max(state.dials, lookups.last_sequence(call))
        why = "the maximum wait" if result == "leave" else f"the queue answered {result}"
        turn.step("routing.queue_left", f"left the queue after {queue_time} s ({why}): on to the fallback chain",
                  {"result": result, "seconds": queue_time})
        return fallback_continue(turn, answer_key=key)
    if result == "hangup":
        message = f"the caller hung up after {queue_time} s in the queue"
    else:
        message = f"taken from the queue after {queue_time} s"
    turn.step("routing.queue_left", message, {"result": result, "seconds": queue_time})
    return turn.answer(key, twiml.hangup())


def queue_offer(turn: Turn, *, handler_id: int, campaign_id: int) -> CallAttempt | None:
    """A handler's leg ended and the handler may take another call: when a caller is waiting in the campaign's
    queue (and nobody is already being dialled for them), take a slot for the handler under its row lock and dial
    their line with ``<Dial><Queue>`` through the carrier (after the commit). The waiting call's row is locked
    (skipping one another transaction holds), so two freed handlers never take the same caller."""
    at = timezone.now()
    with transaction.atomic():
        entry = (
            QueuedCall.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(campaign_id=campaign_id, left_at__isnull=True, offered__isnull=True)
            .select_related("call__campaign", "call__source", "call__tracking_number").order_by("enqueued_at", "id").first()
        )
        if entry is None:
            return None
        call = entry.call
        option = handler_option(handler_id)
        free = step_take([option], at).free
        if not free:
            return None  # still at a cap: the caller waits (another handler, or the maximum wait, decides)
        seq = (call.attempts.aggregate(last=Max("sequence"))["last"] or 0) + 1
        attempt = CallAttempt.objects.create(
            call=call, sequence=seq, kind=AttemptKind.QUEUE, handler_id=option.id, receiving_number_id=option.receiving_number_id,
            number_dialed=option.number, started_at=at, holds_slot=True, counted=not call.is_test,
            slot_expires_at=at + timedelta(seconds=option.ring_timeout + settings.CALLTRACK_SLOT_MARGIN_SECONDS),
        )
        entry.offered = attempt
        entry.save(update_fields=["offered"])
        turn.step("routing.queue_offer", f"{option.name} is free: dialling their line to take the caller from the queue",
                  {"attempt": attempt.pk, "handler": option.id}, call=call)
        links = turn.links
        # The handler hears the whisper on answering, before the caller is connected, as on a dialled leg.
        line = ReceivingNumber.objects.filter(pk=option.receiving_number_id).first() if option.receiving_number_id else None
        twiml_text = twiml.queue_dial(name=queue_name(campaign_id), bridge_url=links.url("/voice/queue-bridge", attempt=attempt.pk),
                                      whisper=whisper_for(call, line) or "", voice=campaign_voice(call.campaign))
        status_url = links.url("/voice/attempt-status", attempt=attempt.pk)
        transaction.on_commit(lambda: _carrier_dial(attempt.pk, account_id=call.account_id, to=option.number, caller_id=call.called_number, twiml_text=twiml_text,
                                                    status_url=status_url, timeout=option.ring_timeout))
    return attempt


def _carrier_dial(attempt_id: int, *, account_id: int | None, to: str, caller_id: str, twiml_text: str, status_url: str, timeout: int) -> None:
    from calltrack.numbers.providers import CarrierError, get_carrier

    try:
        # The caller waits in the queue of the account's Twilio subaccount (if it has one): dial from there.
        get_carrier(account_id=account_id).queue_dial(to=to, caller_id=caller_id, twiml=twiml_text, status_url=status_url, timeout=timeout)
    except CarrierError as exc:
        log.error("queue dial of attempt %s to %s failed: %s", attempt_id, to, exc)
        queue_offer_ended(attempt_id=attempt_id, answered=False)


def queue_bridge_record(turn: Turn, *, attempt_id: int, caller_sid: str, queue_time: int) -> None:
    """The ``<Queue url>`` of queue dial ``attempt_id``: Twilio dequeued the caller ``caller_sid`` to this handler's line.
    Every queue dial is the same ``<Dial><Queue>``, so Twilio bridges the first caller waiting to whichever line
    answers first, whoever the dial was offered for: the leg is credited to the caller actually bridged (the leg moves
    to their call, which is answered by the leg's handler), their queue entry is closed as bridged, and the caller the
    leg was offered for takes over the bridged caller's own pending offer (or none, and may be offered again).

    Idempotent (a retried request changes nothing). Locks the legs (in id order), then the queue entries, the order
    of the legs' status callbacks and of the call's status callback, so none of them deadlock with this."""
    at = timezone.now()
    caller = Call.objects.filter(call_sid=caller_sid).first()
    if caller is None:
        raise LookupError(f"no call {caller_sid[:64]!r} to bridge")
    attempt = CallAttempt.objects.filter(pk=attempt_id, kind=AttemptKind.QUEUE).select_related("call", "handler").first()
    if attempt is None:
        raise LookupError(f"no queue dial {attempt_id}")
    turn.owned(caller.account_id)
    turn.owned(attempt.call.account_id)
    if caller.campaign_id != attempt.call.campaign_id:
        raise ParamError(f"call {caller_sid[:64]!r} is not waiting in the queue of the dial {attempt_id}")
    with transaction.atomic():
        # The bridged caller's own pending offer: known before its row is locked, checked again once it is.
        other = QueuedCall.objects.filter(call=caller).values_list("offered_id", flat=True).first()
        legs = {a.pk: a for a in CallAttempt.objects.select_for_update().filter(pk__in={attempt.pk, *([other] if other else [])}).order_by("pk")}
        entries = list(QueuedCall.objects.select_for_update().filter(Q(call=caller) | Q(offered_id=attempt.pk)).order_by("pk"))
        mine = next((e for e in entries if e.call_id == caller.pk), None)
        if mine is not None and mine.offered_id is not None and mine.offered_id not in legs:  # offered meanwhile
            legs[mine.offered_id] = CallAttempt.objects.select_for_update().get(pk=mine.offered_id)
        leg = legs[attempt.pk]
        if leg.call_id == caller.pk and leg.status in (AttemptStatus.ANSWERED, AttemptStatus.COMPLETED):
            return  # a retried request (even after the leg ended): recorded already
        offered_for = next((e for e in entries if e.offered_id == attempt.pk and e.call_id != caller.pk), None)
        swapped = offered_for is not None
        if offered_for is not None:
            # The caller this leg was offered for is still waiting: the bridged caller's pending offer is now theirs.
            handover = mine.offered_id if mine is not None and mine.offered_id != attempt.pk else None
            offered_for.offered_id = handover
            offered_for.save(update_fields=["offered"])
            if handover is not None and legs[handover].status == AttemptStatus.DIALING:
                _leg_move(legs[handover], offered_for.call_id)
        if mine is not None:
            mine.offered_id, mine.result = attempt.pk, "bridged"
            mine.left_at = mine.left_at or at
            mine.save(update_fields=["offered", "left_at", "result"])
        if leg.call_id != caller.pk:
            _leg_move(leg, caller.pk)
        leg.status, leg.holds_slot, leg.counted, leg.ended_at = AttemptStatus.ANSWERED, True, True, None
        leg.slot_expires_at = at + timedelta(seconds=MAX_CALL_SECONDS + settings.CALLTRACK_SLOT_MARGIN_SECONDS)
        leg.save(update_fields=["status", "holds_slot", "counted", "ended_at", "slot_expires_at"])
        leg.handler = attempt.handler
        who = attempt.handler.name if attempt.handler else leg.number_dialed
        note = f" (the line was dialled for call {attempt.call.call_sid}; Twilio bridges the first caller waiting)" if swapped else ""
        turn.step("routing.queue_bridged", f"taken from the queue by {who} after {queue_time} s{note}",
                  {"attempt": leg.pk, "handler": leg.handler_id, "offered_for": attempt.call_id}, call=caller)
        call_answer(turn, caller, leg, at)


def _leg_move(leg: CallAttempt, call_id: int) -> None:
    """A queue dial's leg now belongs to ``call_id`` (the caller it takes): the next sequence of that call."""
    seq = (CallAttempt.objects.filter(call_id=call_id).aggregate(last=Max("sequence"))["last"] or 0) + 1
    leg.call_id, leg.sequence = call_id, seq
    leg.save(update_fields=["call", "sequence"])


def queue_caller_gone(turn: Turn, *, at: datetime) -> None:
    """The call's status callback says it ended while its queue entry is still open (the ``<Enqueue action>`` with
    QueueResult ``hangup`` lost or late): the entry is closed, so no freed handler is offered a caller who is gone.
    A queue dial already ringing for them goes on (its line takes whoever waits next: ``queue_bridge_record``)."""
    closed = QueuedCall.objects.filter(call=turn.the_call, left_at__isnull=True).update(left_at=at, result="hangup")
    if closed:
        turn.step("routing.queue_left", "the caller hung up while waiting in the queue (the call's status)", {"result": "hangup"})


def queue_offer_ended(*, attempt_id: int, answered: bool) -> None:
    """A queue dial's leg ended. Not answered (or never placed): the slot is released and the caller can be offered
    to the next freed handler."""
    if answered:
        return
    now = timezone.now()
    CallAttempt.objects.filter(pk=attempt_id, ended_at__isnull=True).update(status=AttemptStatus.FAILED, ended_at=now, holds_slot=False, counted=False)
    QueuedCall.objects.filter(offered_id=attempt_id, left_at__isnull=True).update(offered=None)
