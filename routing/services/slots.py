"""Handler slots: which handlers of a step still have room (under their row locks), and a leg's answer.

The counters and locks themselves are statements of ``routing.store.counters``; what the call's answer writes is
``routing.store.voice``. Re-exported here: the counters' public names, for the console and the tasks.
"""

from __future__ import annotations

from dataclasses import replace as dataclass_replace
from datetime import datetime
from typing import NamedTuple

from routing import decision as dec
from routing.services.turn import Turn
from routing.store import voice as store
from routing.store.counters import (
    CountersRead,
    attempt_slots_release_stale,
    cap_counters_fold,
    handler_loads,
    handler_loads_recount,
    handlers_lock,
    period_counts_recount,
)
from tracking.models import AttemptKind, Call, CallAttempt, CallStatus

__all__ = [
    "CountersRead", "answerer", "attempt_slots_release_stale", "call_answer", "cap_counters_fold",
    "credited_handler", "handler_loads", "handler_loads_recount", "leg_answer", "period_counts_recount", "StepTaken", "step_take",
]


class StepTaken(NamedTuple):
    """``step_take``'s answer: the handlers with room, the skipped ones, and per locked handler the id drawn for a
    leg to it (PostgreSQL; none for a handler without caps, whose row is not locked)."""

    free: list[dec.HandlerOption]
    skips: list[dec.Skip]
    leg_ids: dict[int, int]


def step_take(step: list[dec.HandlerOption], at: datetime) -> StepTaken:
    """Which handlers of ``step`` still have room, checked under their row locks.

    Must run inside ``transaction.atomic()``: the capped handlers' rows are locked (``SELECT ... FOR UPDATE``,
    in id order so two calls never deadlock) and their counters re-read; the caller writes the attempts in the
    same transaction (before it commits), so the next call waiting on the lock sees them.
    """
    capped = [o for o in step if o.has_caps]
    if not capped:
        return StepTaken(step, [], {})
    # The caps themselves are re-read from the locked rows: the plan may come from a cached configuration.
    rows = handlers_lock([o.id for o in capped])
    caps = {row[0]: row[1:-1] for row in rows}
    leg_ids = {row[0]: row[-1] for row in rows if row[-1] is not None}
    fresh = {o.id: dataclass_replace(o, **dict(zip(dec.CAP_FIELDS, c, strict=True))) for o in capped if (c := caps.get(o.id)) is not None}
    loads = handler_loads(options=[o for o in fresh.values() if o.has_caps], at=at)
    free, skips = [], []
    for o in step:
        if o.has_caps and o.id not in fresh:
            skips.append(dec.Skip(o.id, o.name, dec.DISABLED, "handler no longer exists"))
            continue
        o = fresh.get(o.id, o)
        load = loads.get(o.id, dec.HandlerLoad())
        why = dec.cap_reached(o, load) if o.has_caps else ""
        if why:
            skips.append(dec.Skip(o.id, o.name, dec.CAPPED, why + " (checked under lock)", dec.cap_frees_at(o, load, at)))
        else:
            free.append(o)
    return StepTaken(free, skips, leg_ids)


def credited_handler(attempt: CallAttempt) -> int | None:
    """The handler an answer of ``attempt`` credits: its handler, except on a fallback chain leg the campaign does not
    credit (dialled uncounted: ``routing.services.plan``'s tail), which answers for no handler."""
    if attempt.kind == AttemptKind.FALLBACK and not attempt.counted:
        return None
    return attempt.handler_id


def leg_answer(turn: Turn, call: Call, attempt: CallAttempt, at: datetime) -> bool:
    """A ringing leg answered (its whisper, or its own status callback): the leg is answered, then the call (once)."""
    store.leg_mark_answered(attempt.pk, at)
    return call_answer(turn, call, attempt, at)


def call_answer(turn: Turn, call: Call, attempt: CallAttempt, at: datetime, *, step: store.StepAnswered | None = None) -> bool:
    """The call's first answer, by ``attempt``: in progress with that leg's credited handler; ``call.answered`` is
    announced once (a conditional UPDATE decides which answer is first). ``step``: the answered dial's legs, completed
    with it (the store writes both in one statement where it can). Returns whether this answer was the call's first."""
    handler_id = credited_handler(attempt)
    won = store.call_mark_answered(call.pk, handler_id=handler_id, at=at, step=step)
    if won:
        call.answered_at, call.handler_id, call.status = at, handler_id or call.handler_id, CallStatus.IN_PROGRESS
        turn.notify("call.answered", f"answered by {answerer(attempt)}", {"attempt": attempt.pk, "handler": handler_id}, call=call)
    return won


def answerer(attempt: CallAttempt) -> str:
    """Who answered ``attempt``, in words: the handler, or for a fallback leg credited to none the number reached."""
    if attempt.handler_id is not None and credited_handler(attempt) is None:
        return f"the fallback chain at {attempt.number_dialed} ({attempt.handler}'s line, not credited to them)"
    return str(attempt.handler or attempt.number_dialed)
