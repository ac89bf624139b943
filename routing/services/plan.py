"""The dial plan: build it (``routing.decision``), dial its steps taking slots, then the no-answer routing and fallback chain.

Every function takes the webhook's unit of work (``routing.services.turn.Turn``): the call, its typed routing state,
and the writes gathered for the end of the transaction. The statements are ``routing.store``'s.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from calltrack import fastdb
from calltrack.numbers.models import NoAnswerAction, ReceivingNumber
from routing import decision as dec
from routing import nearest, twiml
from routing.services.common import Links, campaign_voice, is_real_number
from routing.services.config import CampaignConfig, campaign_config, handler_option
from routing.services.slots import step_take
from routing.services.turn import StepsRetry, Turn
from routing.store import lookups
from routing.store import voice as store
from routing.store.counters import CountersRead, handler_loads
from tracking.call_state import CallState, MenuPosition, NoAnswerStop, QueueStay
from tracking.models import (
    AttemptKind,
    Call,
    CallAttempt,
    Campaign,
    FallbackCredit,
    QueuedCall,
)


def route(turn: Turn, *, answer_key: str, only_handler_id: int | None = None,
          greeting: twiml.Greeting | None = None, rng: random.Random | None = None,
          only_reason: str = dec.IVR_CHOICE, only_because: str = "the caller's key", only_then_others: bool = False) -> str:
    """Build the call's dial plan from the campaign's handlers and live counters, then dial its first step.
    ``only_handler_id`` goes straight to one handler; ``only_reason`` and ``only_because`` say who chose it
    (the caller's key, a lookup table, the landing page's destination) in the other handlers' skips.

    Reads: the campaign's handlers (one query), their counters (one query), the sticky handler and the
    round-robin cursor when the campaign uses them. The slot is then taken under a row lock (see ``plan_advance``).
    """
    call = turn.the_call
    campaign = call.campaign
    assert campaign is not None
    at = timezone.now()
    config = campaign_config(campaign)
    options = list(config.options)
    if only_handler_id is not None and all(o.id != only_handler_id for o in options):
        options.append(handler_option(only_handler_id))  # an IVR key may name a handler outside the campaign
    strategy = campaign.routing_strategy
    if strategy == dec.NEAREST:
        options, strategy = _nearest(turn, campaign, options)
    # The counters read ahead as the call was recorded (``call_start``), when they cover these handlers: the plan is then
    # made as of the call's start, a few milliseconds earlier (the step's slots are checked under lock in any case).
    ahead, turn.counters = turn.counters, None
    real_caller = is_real_number(call.caller_number)
    if strategy == dec.PRIORITY_WEIGHT and only_handler_id is None and by_priority_groups(campaign, config):
        return _route_by_group(turn, config, at=at, ahead=ahead, answer_key=answer_key, greeting=greeting, rng=rng,
                               real_caller=real_caller)
    loads = ahead.loads(options, all_in_progress=strategy == dec.LEAST_CONNECTED) if ahead is not None else None
    if loads is not None and ahead is not None:
        at = ahead.at
    else:
        loads = handler_loads(options=options, at=at, all_in_progress=strategy == dec.LEAST_CONNECTED)
    # Business hours at the moment a test call's operator chose (its counters are read at the real time).
    context = dec.CallContext(call.call_sid, call.caller_number, call.called_number, call.test_clock or at, call.tags)
    plan = dec.plan_build(
        context=context, options=options, loads=loads, strategy=strategy, campaign_enabled=campaign.enabled,
        rr_position=store.round_robin_next(campaign.pk) if strategy == dec.ROUND_ROBIN and options else 0,
        # Anonymous callers all look alike: only a real number makes a caller a repeat caller.
        sticky_handler_id=store.sticky_handler_load(call) if campaign.sticky_routing and real_caller else None,
        only_handler_id=only_handler_id, only_reason=only_reason, only_because=only_because, only_then_others=only_then_others,
        one_handler_per_call=config.one_handler_per_call, duplicates=_duplicates(call, options, at) if real_caller else None, rng=rng,
    )
    plan.keep(turn.state, {o.id: o for o in options})
    return plan_advance(turn, answer_key=answer_key, greeting=greeting)


# A priority group planned when the plan reaches it: its handlers' ids are a step of the plan, and their options
# only their names with this mark (``plan_advance`` decides the group then: ``_group_decide``).
LATER = "later"


def by_priority_groups(campaign: Campaign, config: CampaignConfig) -> bool:
    """Whether a priority-weight plan of this campaign is decided one priority group at a time: the first group with a
    handler that can take the call is decided (its eligibility, its caps' counters), the groups after it when the plan
    reaches them (most calls are answered in the first). Not with one group (nothing to save), an else route (whether
    it takes the call depends on every handler's criteria) or a disabled campaign (every handler skipped at once)."""
    return len(config.priority_groups) > 1 and campaign.enabled and not config.has_else_route


def counters_wanted_first(campaign: Campaign, config: CampaignConfig, *, every: bool) -> Sequence[dec.HandlerOption]:
    """The handlers whose counters a new call's plan reads first: the capped handlers of the first priority group when
    the plan is decided one group at a time (``by_priority_groups``), else every capped handler (``every``: every
    handler, for least connected)."""
    if every:
        return config.options
    if campaign.routing_strategy == dec.PRIORITY_WEIGHT and by_priority_groups(campaign, config):
        return config.first_group_capped
    return config.capped


# How many handlers of a priority group a plan decides at once: the first ones of the group's weighted random order.
GROUP_BATCH = 10


def _route_by_group(turn: Turn, config: CampaignConfig, *, at: datetime, ahead: CountersRead | None, answer_key: str,
                    greeting: twiml.Greeting | None, rng: random.Random | None, real_caller: bool) -> str:
    """``route`` for a priority-weight plan decided one priority group at a time (``by_priority_groups``).

    Each group's weighted random order is drawn whole (cheap), then decided ``GROUP_BATCH`` handlers at a time, in that
    order, until a batch has a handler that can take the call (the sticky handler, wherever it sits, with the first
    batch): its eligibility and its counters (one read; the first group's were read ahead with the call). What follows it,
    the rest of its group and each later group, goes into the plan undecided, one step each, decided when the plan
    reaches it (``_group_decide``: a weighted random order of what is left, as the weighted order draws it one handler
    after another, so the odds are those of deciding the whole group at once). Caps are checked under the handlers'
    row locks when their step is dialled, as for any plan."""
    call = turn.the_call
    campaign = call.campaign
    assert campaign is not None
    rng = rng or random.Random()
    groups = config.priority_groups
    sticky = store.sticky_handler_load(call) if campaign.sticky_routing and real_caller else None
    sticky_option = config.by_id.get(sticky) if sticky is not None else None
    considered: dict[int, dec.HandlerOption] = {}
    skipped: list[dec.Skip] = []
    plan = None
    index, rest = 0, []
    for index, group in enumerate(groups):
        ordered = dec.weighted_order([o for o in group if o.id not in considered], rng)
        for begin in range(0, max(len(ordered), 1), GROUP_BATCH):
            these = [o for o in ordered[begin:begin + GROUP_BATCH] if o.id not in considered]
            first = not considered
            if first and sticky_option is not None and all(o.id != sticky_option.id for o in these):
                these.insert(0, sticky_option)
            considered.update((o.id, o) for o in these)
            loads = ahead.loads(these, all_in_progress=False) if ahead is not None and index == 0 else None
            if loads is not None and ahead is not None:
                at = ahead.at
            else:
                loads = handler_loads(options=these, at=at)
            context = dec.CallContext(call.call_sid, call.caller_number, call.called_number, call.test_clock or at, call.tags)
            # In the order drawn (no copy of each option renumbered: it would also lose its cached properties).
            plan = dec.plan_build(
                context=context, options=these, loads=loads, strategy=dec.AS_DRAWN, campaign_enabled=campaign.enabled,
                sticky_handler_id=sticky if first else None,
                one_handler_per_call=config.one_handler_per_call, duplicates=_duplicates(call, these, at) if real_caller else None,
            )
            skipped.extend(plan.skipped)
            if plan.steps:
                rest = [o.id for o in ordered[begin + GROUP_BATCH:] if o.id not in considered]
                break
        if plan is not None and plan.steps:
            break
    assert plan is not None
    later = [rest] + [[o.id for o in group if o.id not in considered] for group in groups[index + 1:]]
    later = [step for step in later if step]
    dec.DialPlan(
        strategy=dec.PRIORITY_WEIGHT, steps=plan.steps + later, skipped=skipped, sticky_handler_id=plan.sticky_handler_id,
        one_handler_per_call=plan.one_handler_per_call,
    ).keep(turn.state, considered)
    turn.state.options.update({h: {"name": config.by_id[h].name, LATER: True} for step in later for h in step})
    return plan_advance(turn, answer_key=answer_key, greeting=greeting)


def _group_decide(turn: Turn) -> None:
    """The plan reached a priority group left undecided (``_route_by_group``): decide it now, as its own plan (the
    handlers' current configuration, counters and eligibility), in place of its step."""
    call, state = turn.the_call, turn.state
    campaign = call.campaign
    ids = state.steps[state.plan_index]
    config = campaign_config(campaign) if campaign is not None else None
    by_id = config.by_id if config is not None else {}
    group = [by_id[h] for h in ids if h in by_id]
    gone = [dec.Skip(h, state.option_name(h), dec.DISABLED, "no longer in the campaign") for h in ids if h not in by_id]
    plan = dec.DialPlan(strategy=state.strategy, steps=[], skipped=[])
    if group and campaign is not None and config is not None:
        at = timezone.now()
        context = dec.CallContext(call.call_sid, call.caller_number, call.called_number, call.test_clock or at, call.tags)
        plan = dec.plan_build(
            context=context, options=group, loads=handler_loads(options=group, at=at), strategy=state.strategy or dec.PRIORITY_WEIGHT,
            campaign_enabled=campaign.enabled, one_handler_per_call=state.one_handler_per_call,
            duplicates=_duplicates(call, group, at) if is_real_number(call.caller_number) else None,
        )
    for h in ids:
        state.options.pop(h, None)
    planned = set(plan.handler_ids)
    state.options.update({o.id: o.dial_json() for o in group if o.id in planned})
    state.steps[state.plan_index:state.plan_index + 1] = plan.steps
    state.skip(s.record() for s in [*gone, *plan.skipped])


def _duplicates(call: Call, options: list[dec.HandlerOption], at: datetime) -> dict[int, str]:
    """The handlers restricting duplicates that already had this caller within their window (``dec.duplicates_find``):
    one query for all of them, none when no handler of the campaign restricts duplicates."""
    windows = dec.duplicate_windows(options)
    if not windows:
        return {}
    history = lookups.caller_history_load(call, handler_ids=windows, since=at - timedelta(days=max(windows.values())))
    return dec.duplicates_find(options, history, at)


def _nearest(turn: Turn, campaign: Campaign, options: list[dec.HandlerOption]) -> tuple[list[dec.HandlerOption], str]:
    """The "nearest" strategy as a sequential order of the handlers by distance, or the campaign's fallback
    strategy when the caller's place is unknown; the timeline says which and why."""
    call = turn.the_call
    place = nearest.caller_place(call.tags, call.caller_number)
    if place.point is None:
        turn.step("routing.nearest", f"{place.how}: ordered by {campaign.get_nearest_fallback_display().lower()}")
        return options, campaign.nearest_fallback
    ordered, notes = nearest.nearest_order(options, place)
    turn.step("routing.nearest", f"caller at {place.how}: " + (", ".join(notes) or "no handler has a location"))
    return ordered, dec.NEAREST


def _option_from_json(hid: int, d: Mapping[str, Any]) -> dec.HandlerOption:
    if "caps" in d:  # stored before DIAL_FIELDS (a call in progress across the upgrade)
        caps = dict(zip(("concurrency_cap", "hourly_cap", "daily_cap", "monthly_cap", "total_cap"), d["caps"], strict=True))
        d = {**d, **caps, "receiving_number_id": d.get("receiving_number")}
    return dec.HandlerOption.from_row({**d, "id": hid})


def _caller_id(call: Call) -> str:
    return call.caller_number if is_real_number(call.caller_number) else ""


def plan_advance(turn: Turn, *, answer_key: str, greeting: twiml.Greeting | None = None) -> str:
    """Dial the next step of the plan that still has room; past the plan, the no-answer routing and the
    fallback chain; past those, the voicemail or the message and hang up. Stores the answer under
    ``answer_key``. Each step's slots are taken and its attempts recorded in one transaction."""
    state = turn.state
    bound = dec.attempt_rule_done(state)
    if bound:  # an attempt rule: the handler dialled was the call's one; on to the fallback
        state.skip(bound)
        state.plan_index = len(state.steps)
    while state.plan_index < len(state.steps):
        if any(state.options.get(h, {}).get(LATER) for h in state.steps[state.plan_index]):
            _group_decide(turn)  # a priority group decided when reached: its steps replace this one
            continue
        # Only this step's handlers are rebuilt from the stored options (a plan may hold hundreds).
        step = [_option_from_json(h, state.options[h]) for h in state.steps[state.plan_index] if h in state.options]
        state.plan_index += 1
        try:
            return _dial_step(turn, step=step, answer_key=answer_key, greeting=greeting, total=len(state.steps))
        except _StepFull as full:
            state.skip(s.record() for s in full.skips)
    campaign = turn.the_call.campaign
    if campaign is not None and dec.queue_wanted(state, enabled=campaign.queue_enabled, at=timezone.now(), max_wait=campaign.queue_max_wait):
        return _enqueue(turn, answer_key=answer_key, greeting=greeting)
    return _tail(turn, answer_key=answer_key, greeting=greeting)


def queue_name(campaign_id: int) -> str:
    """The Twilio queue of a campaign's waiting callers (created by Twilio on the first ``<Enqueue>``)."""
    return f"calltrack-campaign-{campaign_id}"


def _enqueue(turn: Turn, *, answer_key: str, greeting: twiml.Greeting | None, no_answer: bool = False) -> str:
    """Every eligible handler is busy and the campaign queues, or a line's no-answer routing says "queue"
    (``no_answer``): the caller waits (``routing.services.queue`` answers the wait URL and the queue's result; a freed
    handler's line takes the caller; leaving after the maximum wait goes on down the fallback chain)."""
    call, links, state = turn.the_call, turn.links, turn.state
    assert call.campaign_id is not None
    at = timezone.now()
    state.queue = QueueStay(at=int(at.timestamp()))
    QueuedCall.objects.create(call=call, campaign_id=call.campaign_id, enqueued_at=at)
    max_wait = call.campaign.queue_max_wait if call.campaign else 0
    if no_answer:
        state.no_answer.append(NoAnswerStop("queue", after=state.dials))
        turn.step("routing.queued", f"no answer: the caller waits in the queue (at most {max_wait} s)", {"no_answer": True, "max_wait": max_wait})
    else:
        waited_for = dec.queue_frees(state, at=at, max_wait=max_wait)
        busy = list(dict.fromkeys(s.name for s in state.skipped if s.handler_id in waited_for))
        turn.step("routing.queued", f"queued: every handler busy ({', '.join(busy)})", {"busy": busy, "max_wait": max_wait})
    answer = twiml.enqueue(
        name=queue_name(call.campaign_id), action=links.url("/voice/queue-result", call=call.pk),
        wait_url=links.url("/voice/queue-wait", call=call.pk), greeting=greeting,
    )
    return turn.answer(answer_key, answer)


class _StepFull(Exception):
    """Every handler of a step was capped under its lock: roll the step's savepoint back (which releases the
    row locks it took, so a call never holds one handler's lock while waiting for another's)."""

    def __init__(self, skips: list[dec.Skip]) -> None:
        super().__init__("step full")
        self.skips = skips


def _dial_step(turn: Turn, *, step: list[dec.HandlerOption], answer_key: str, greeting: twiml.Greeting | None, total: int) -> str:
    """Take the step's slots and record its attempts in one transaction (a savepoint inside the request's)."""
    call, links, state = turn.the_call, turn.links, turn.state
    campaign = call.campaign
    at = timezone.now()
    # A savepoint only where row locks are taken (capped handlers): rolling it back releases them. Without one
    # (``turn.step_savepoints`` off, the first try), a full step sends the whole request round again, with savepoints.
    locks = any(o.has_caps for o in step)
    savepoint = locks and turn.step_savepoints
    with transaction.atomic(savepoint=savepoint):
        free, skips, leg_ids = step_take(step, at)
        if not free:
            if locks and not savepoint:
                raise StepsRetry(f"call {call.call_sid}: step {state.plan_index} full under its locks")
            raise _StepFull(skips)
        if skips:
            state.skip(s.record() for s in skips)
        seq = state.next_dial()
        margin = timedelta(seconds=settings.CALLTRACK_SLOT_MARGIN_SECONDS)
        timeout = max(o.ring_timeout for o in free)
        attempts = [
            fastdb.new(
                CallAttempt, call=call, sequence=seq, kind=AttemptKind.HANDLER, handler_id=o.id, receiving_number_id=o.receiving_number_id,
                number_dialed=o.number, started_at=at, holds_slot=True, slot_expires_at=at + timedelta(seconds=timeout) + margin,
                counted=not call.is_test,  # a test call holds the line (concurrency) but counts toward no period cap
            )
            for o in free
        ]
        # Their ids drawn ahead (under the locks, or the first leg's with the tracking number), the legs are written with
        # the turn's other writes, before the commit that releases the locks; else now.
        if not turn.legs_add(attempts, [leg_ids.get(o.id) for o in free]):
            store.attempts_insert(attempts)
        numbers = [
            twiml.DialNumber(a.number_dialed, o.send_digits, _whisper_url(call, a, links), links.url("/voice/attempt-status", attempt=a.pk))
            for a, o in zip(attempts, free, strict=True)
        ]
        answer = twiml.dial(
            numbers=numbers, action=links.url("/voice/dial-status", call=call.pk, seq=seq), timeout=timeout,
            caller_id=_caller_id(call), record=bool(campaign and campaign.record_calls), greeting=greeting,
            recording_callback=_recording_callback(call, links),
        )
        call.handler_id = free[0].id
        turn.answer(answer_key, answer, "handler")
        turn.notify("call.routed", f"dialling {', '.join(o.name for o in free)} (step {state.plan_index} of {total})",
                    {"handlers": [o.id for o in free], "sequence": seq, "skipped_under_lock": [s.detail for s in skips]})
        return answer


def _whisper_url(call: Call, attempt: CallAttempt, links: Links) -> str:
    return links.url("/voice/whisper", attempt=attempt.pk)


def fallback_continue(turn: Turn, *, answer_key: str) -> str:
    """On down the fallback chain (a caller who left the queue, or a menu the tail played without a choice): its next
    step, else the message or voicemail."""
    return _tail(turn, answer_key=answer_key, greeting=None)


def _recording_callback(call: Call, links: Links) -> str:
    return links.url("/voice/recording-status", call=call.pk)


def _tail(turn: Turn, *, answer_key: str, greeting: twiml.Greeting | None) -> str:
    call, links, state = turn.the_call, turn.links, turn.state
    if state.tail is None:
        steps, terminal = dec.tail_build(_fallback_inputs(call), already_dialed=lookups.numbers_dialed(call),
                                         queued=_queued(call, state), menus_heard=_menus_heard(state))
        state.tail, state.ending, state.tail_index = steps, terminal, 0
    else:
        _tail_after_no_answer(call, state)
    tail = state.tail
    campaign = call.campaign
    while state.tail_index < len(tail):
        step = tail[state.tail_index]
        state.tail_index += 1
        if step.kind == "queue":
            if _queued(call, state):
                continue
            return _enqueue(turn, answer_key=answer_key, greeting=greeting, no_answer=True)
        if step.kind == "menu":
            answer = _no_answer_menu(turn, step, greeting=greeting)
            if answer is None:
                continue
            return turn.answer(answer_key, answer)
        ring_timeout, handler_id = lookups.line_load(step.receiving_number_id, campaign_id=call.campaign_id)
        if handler_id is not None and handler_id != call.handler_id and state.one_handler_per_call:
            # An attempt rule sold the call to the handler dialled: another handler's line is not dialled.
            state.skip([dec.Skip(handler_id, step.label, dec.ATTEMPT_RULE,
                                 f"{step.number} is another handler's line; the campaign's attempt rule dials one handler per call").record()])
            continue
        seq = state.next_dial()
        kind = AttemptKind.NO_ANSWER_FORWARD if step.kind == "no_answer_forward" else AttemptKind.FALLBACK
        at = timezone.now()
        # A handler's line dialled by the tail is busy with this call: the leg holds that handler's slot. It counts
        # toward its caps, and its answer credits the handler, only when it is the handler's leg: a no-answer forward
        # (the line's own setting), or a fallback step the campaign credits (``fallback_credit``); a fallback leg not
        # credited is uncounted (``routing.services.slots.credited_handler``).
        credited = handler_id is not None and (kind != AttemptKind.FALLBACK or fallback_credits(campaign, step.step))
        attempt = fastdb.new(
            CallAttempt, call=call, sequence=seq, kind=kind, receiving_number_id=step.receiving_number_id, number_dialed=step.number,
            handler_id=handler_id, started_at=at, holds_slot=handler_id is not None, counted=credited and not call.is_test,
            slot_expires_at=(at + timedelta(seconds=ring_timeout + settings.CALLTRACK_SLOT_MARGIN_SECONDS)) if handler_id else None,
        )
        store.attempts_insert([attempt])
        call.fallback_step = (step.step or step.kind)[:30]
        # Whisper and leg status like a handler's leg: the answer is marked when it happens, the slot released.
        number = twiml.DialNumber(
            step.number, step.send_digits, _whisper_url(call, attempt, links), links.url("/voice/attempt-status", attempt=attempt.pk))
        answer = twiml.dial(
            numbers=[number], action=links.url("/voice/dial-status", call=call.pk, seq=seq),
            timeout=ring_timeout, caller_id=_caller_id(call),
            record=bool(campaign and campaign.record_calls), greeting=greeting, recording_callback=_recording_callback(call, links),
        )
        turn.notify("call.routed", f"no handler took the call: dialling the {step.label}", {"sequence": seq, "fallback": step.label})
        return turn.answer(answer_key, answer, "fallback_step")
    terminal = state.ending or dec.Terminal("hangup", "")
    voice = campaign_voice(campaign)
    if terminal.kind == "voicemail":
        turn.step("call.voicemail", "no one answered: taking a voicemail")
        answer = twiml.voicemail(message=terminal.message, action=links.url("/voice/voicemail", call=call.pk), voice=voice, greeting=greeting)
    else:
        turn.step("call.unanswered", "no one answered and no fallback is left: message and hang up")
        answer = twiml.say_hangup(terminal.message, voice, greeting=greeting)
    return turn.answer(answer_key, answer)


def _queued(call: Call, state: CallState) -> bool:
    """Whether the call can no longer wait in a queue: it waited in one already (once per call), or has no campaign."""
    return state.queue is not None or call.campaign_id is None


def _menus_heard(state: CallState) -> int:
    return state.menu.menus if state.menu is not None else 0


def _no_answer_menu(turn: Turn, step: dec.TailStep, *, greeting: twiml.Greeting | None) -> str | None:
    """A line's no-answer routing plays one of the campaign's sub-menus: its keys then route as any sub-menu's do
    (``routing.services.calls.gather_answer``; the gather URL names the menu and its place among the menus heard).
    None when the menu is gone since the tail was decided (the configuration changed): the tail goes on."""
    call, links, state = turn.the_call, turn.links, turn.state
    campaign = call.campaign
    menu = campaign_config(campaign).ivr_menu(step.menu_id) if campaign is not None and step.menu_id is not None else None
    if campaign is None or menu is None:
        return None
    heard = _menus_heard(state) + 1
    state.menu = MenuPosition(rounds=1, menus=heard)
    state.no_answer.append(NoAnswerStop("menu", after=state.dials, name=menu.name))
    turn.step("ivr.menu", f"no answer: sub-menu '{menu.name}' played", {"menu": menu.id, "no_answer": True})
    query = {"call": call.pk, "round": 1, "menu": menu.id, **({"heard": heard} if heard > 1 else {})}
    url = links.url("/voice/gather", **query)
    return twiml.menu(prompt=menu.prompt, action=url, redirect=url, timeout=menu.timeout, voice=campaign_voice(campaign), greeting=greeting)


def fallback_credits(campaign: Campaign | None, step: str) -> bool:
    """Whether the campaign credits the handler whose line answers fallback chain step ``step`` (``FallbackCredit``)."""
    return campaign is not None and campaign.fallback_credit == FallbackCredit.ASSIGNED_AGENT and step in ("number_agent", "caller_agent")


def _no_answer_setting(receiving_number_id: int, campaign: Campaign | None) -> dec.NoAnswerSetting | None:
    rn = lookups.receiving_number_load(receiving_number_id)
    if rn is None:
        return None
    fwd = rn.no_answer_forward_to if rn.no_answer_action == NoAnswerAction.FORWARD else None
    forward = dec.TailStep("no_answer_forward", f"no-answer forward of {rn.label}", fwd.number, fwd.pk, fwd.send_digits,
                           "no_answer_forward") if fwd is not None else None
    return dec.NoAnswerSetting(rn.no_answer_action, rn.no_answer_message, forward, _line_menu(rn, campaign))


def _line_menu(rn: ReceivingNumber, campaign: Campaign | None) -> dec.IVRMenuData | None:
    """The sub-menu a line's no-answer routing plays, when it is one of the call's campaign's menus with keys (from the
    campaign's cached configuration: no query); a line serves several campaigns, and a menu of another is not played."""
    if rn.no_answer_action != NoAnswerAction.MENU or rn.no_answer_menu_id is None or campaign is None:
        return None
    return campaign_config(campaign).ivr_menu(rn.no_answer_menu_id)


def _tail_after_no_answer(call: Call, state: CallState) -> None:
    """The tail's last number rang out: when it is a receiving number, its own no-answer setting decides what
    follows (``routing.decision.tail_after_no_answer``). Runs once per unanswered tail leg (the dial result that
    calls it stores its answer)."""
    tail, index = state.tail or [], state.tail_index
    line = tail[index - 1].receiving_number_id if index else None
    if line is None:
        return
    campaign = call.campaign
    rest, terminal = dec.tail_after_no_answer(
        _no_answer_setting(line, campaign), rest=tail[index:],
        terminal=state.ending or dec.Terminal("hangup", ""), already_dialed=lookups.numbers_dialed(call),
        forwards=sum(1 for t in tail[:index] if t.kind == "no_answer_forward"),
        campaign_message=campaign.no_answer_message if campaign else "",
        queued=_queued(call, state), menus_heard=_menus_heard(state),
    )
    state.tail = tail[:index] + list(rest)
    state.ending = terminal


def _agent_step(agent: ReceivingNumber | None, label: str, step: str) -> dec.TailStep | None:
    if agent is None:
        return None
    return dec.TailStep("fallback", label, agent.number, agent.pk, agent.send_digits, step)


def _fallback_inputs(call: Call) -> dec.FallbackInputs:
    rn = lookups.last_line_dialed(call)
    forward = None
    if rn is not None and rn.no_answer_action == NoAnswerAction.FORWARD and rn.no_answer_forward_to is not None:
        fwd = rn.no_answer_forward_to
        forward = dec.TailStep("no_answer_forward", f"no-answer forward of {rn.label}", fwd.number, fwd.pk, fwd.send_digits, "no_answer_forward")
    tn = call.tracking_number
    contact = lookups.contact_load(call.caller_number, account_id=call.account_id) if is_real_number(call.caller_number) else None
    campaign = call.campaign
    return dec.FallbackInputs(
        last_no_answer_action=(rn.no_answer_action if rn else ""),
        last_no_answer_message=(rn.no_answer_message if rn else ""),
        forward=forward,
        number_agent=_agent_step(tn.assigned_agent if tn else None, "tracking number's agent", "number_agent"),
        caller_agent=_agent_step(contact.assigned_agent if contact else None, "caller's agent", "caller_agent"),
        forwarding_number=tn.forwarding_number if tn else "",
        company_phone=campaign.company_phone if campaign else "",
        campaign_message=campaign.no_answer_message if campaign else "",
        menu=_line_menu(rn, campaign) if rn is not None else None,
    )
