"""The routing decision: call context + handlers + live counters -> an ordered dial plan, with reasons.

Pure functions over plain data: no ORM, no HTTP, no Twilio. ``routing.services`` loads the data, takes
the slots under row locks and renders the TwiML; everything here is unit-tested on its own.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import MISSING, dataclass, field, fields
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import Any, NamedTuple

from calltrack import hours as hours_rules
from calltrack import tags as tag_rules

# The strategy names live in calltrack.strategies, with the campaign model's choices (re-exported here).
from calltrack.strategies import LEAST_CONNECTED as LEAST_CONNECTED
from calltrack.strategies import NEAREST as NEAREST
from calltrack.strategies import PRIORITY_WEIGHT as PRIORITY_WEIGHT
from calltrack.strategies import ROUND_ROBIN as ROUND_ROBIN
from calltrack.strategies import SEQUENTIAL as SEQUENTIAL
from calltrack.strategies import SIMULTANEOUS as SIMULTANEOUS
from calltrack.strategies import STRATEGIES as STRATEGIES
from tracking.call_state import CallState, Ending, SkipRecord, TailEntry

# The options' own order (see ``order``): the service drew it; not one of the campaign's routing strategies.
AS_DRAWN = "as_drawn"
SIMULTANEOUS_MAX = 10  # Twilio rings at most 10 <Number>s in one <Dial>.

# Skip reasons (codes the admin timeline and the tests read).
DISABLED = "disabled"
CLOSED = "closed"
TAGS = "tag_mismatch"
CAPPED = "capped"
NO_NUMBER = "no_number"
IVR_CHOICE = "ivr_choice"  # the caller's IVR key sent the call straight to another handler
LOOKUP_TABLE = "lookup_table"  # a lookup table's row sent the call straight to another handler
DESTINATION = "destination"  # the destination the visitor's landing page showed sent the call to another handler
ATTEMPT_RULE = "attempt_rule"  # the campaign's attempt rule allows one handler per call
ANSWERED = "answered_before"  # an earlier leg answered: the rest of the plan was not needed
HUNG_UP = "caller_hung_up"  # the caller hung up before the rest of the plan was dialled
DUPLICATE = "duplicate"  # the handler restricts duplicates and already had this caller (answered or converted) lately

# A handler's ``duplicate_on``: what makes a repeat caller a duplicate for it.
DUPLICATE_ANSWERED = "answered"
DUPLICATE_CONVERTED = "converted"


@dataclass(frozen=True)
class CallContext:
    """What we know about the call when we decide."""

    call_sid: str
    caller: str
    called: str
    at: datetime
    tags: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class HandlerOption:
    """One handler as this campaign sees it (campaign overrides of priority/weight applied)."""

    id: int
    name: str
    number: str
    receiving_number_id: int | None = None
    send_digits: str = ""
    priority: int = 1
    weight: int = 1
    position: int = 0
    enabled: bool = True  # the handler and its place in this campaign are both enabled
    enabled_in_campaign: bool = True  # its place in this campaign is enabled (False: disabled here only)
    timezone: str = "America/New_York"
    always_open: bool = True
    business_hours: Mapping[str, list[str]] = field(default_factory=dict)
    tag_criteria: Sequence[Mapping[str, Any]] = ()
    ring_timeout: int = 30
    concurrency_cap: int | None = None
    hourly_cap: int | None = None
    daily_cap: int | None = None
    monthly_cap: int | None = None
    total_cap: int | None = None
    cap_counts: str = "connection"
    latitude: float | None = None  # the handler's location, for the "nearest" strategy
    longitude: float | None = None
    duplicate_days: int | None = None  # restrict duplicates: a caller it had within this many days goes elsewhere
    duplicate_on: str = DUPLICATE_ANSWERED  # had: answered, or converted (the revenue side)

    # Cached: asked for every handler several times per call (an option never changes: it is frozen).
    @cached_property
    def has_period_caps(self) -> bool:
        return any(c is not None for c in (self.hourly_cap, self.daily_cap, self.monthly_cap, self.total_cap))

    @cached_property
    def is_else_route(self) -> bool:
        """Its criteria are the campaign's else route (``tags.is_else``)."""
        return bool(self.tag_criteria) and tag_rules.is_else(self.tag_criteria)

    @cached_property
    def criteria_groups(self) -> list[list[Mapping[str, Any]]]:
        """Its tag criteria by OR-group (``tags.groups``), split once per option."""
        return tag_rules.groups(self.tag_criteria)

    @cached_property
    def has_caps(self) -> bool:
        return self.concurrency_cap is not None or self.has_period_caps

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> HandlerOption:
        """From a mapping keyed by field names (``OPTION_FIELDS``); fields it does not hold keep their defaults."""
        return cls(**{name: row[name] for name in OPTION_FIELDS if name in row})

    def asdict(self, names: Sequence[str] | None = None) -> dict[str, Any]:
        """The fields named (default: all of ``OPTION_FIELDS``) as a plain dict, ``from_row``'s inverse."""
        return {name: getattr(self, name) for name in (OPTION_FIELDS if names is None else names)}

    @cached_property
    def _dial_fields(self) -> dict[str, Any]:
        return {name: value for name, value in self.asdict(DIAL_FIELDS).items() if name == "name" or value != _OPTION_DEFAULTS.get(name)}

    def dial_json(self) -> dict[str, Any]:
        """What a call's decision keeps to dial this handler later: ``asdict(DIAL_FIELDS)`` without the fields at
        their defaults (``from_row`` restores them: a caller's decision is dumped and loaded on every webhook, and a
        smaller one is cheaper to write). Built once per option (options are cached with the campaign's
        configuration); a copy each time, the caller may change it."""
        return dict(self._dial_fields)


# Every field of a handler option, in one place: readers build options with ``HandlerOption.from_row``.
OPTION_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(HandlerOption))
# The fields with a plain default (what ``from_row`` gives a field its row does not hold).
_OPTION_DEFAULTS: dict[str, Any] = {f.name: f.default for f in fields(HandlerOption) if f.default is not MISSING}
# The caps, as re-read from the handler's locked row before a slot is taken.
CAP_FIELDS: tuple[str, ...] = ("concurrency_cap", "hourly_cap", "daily_cap", "monthly_cap", "total_cap", "cap_counts")
# What a call's decision keeps of each planned handler to dial it later.
DIAL_FIELDS: tuple[str, ...] = ("name", "number", "receiving_number_id", "send_digits", "ring_timeout", "timezone", *CAP_FIELDS)


@dataclass(frozen=True)
class HandlerLoad:
    """A handler's live counters: calls in progress, counted calls in its current hour/day/month, ever."""

    in_progress: int = 0
    hour: int = 0
    day: int = 0
    month: int = 0
    total: int = 0


CapsState = Mapping[int, HandlerLoad]
_NO_LOAD = HandlerLoad()


class Skip(NamedTuple):
    """A handler the plan leaves out, and why (a named tuple: one per handler left out, on every call)."""

    handler_id: int
    name: str
    reason: str
    detail: str
    # CAPPED: when the handler may take a call again (``cap_frees_at``; None: not before its caps change).
    frees_at: datetime | None = None

    def record(self) -> SkipRecord:
        """As the call's routing state keeps it: a capped skip keeps when its handler frees up (``frees_at``, epoch
        seconds or None), which the queue reads."""
        frees = int(self.frees_at.timestamp()) if self.reason == CAPPED and self.frees_at is not None else None
        return SkipRecord(self.handler_id, self.name, self.reason, self.detail, frees)


@dataclass
class DialPlan:
    """Steps to dial in order (each a list of handler ids: one, or up to 10 rung at once) and who was left out."""

    strategy: str
    steps: list[list[int]]
    skipped: list[Skip]
    sticky_handler_id: int | None = None
    one_handler_per_call: bool = False  # an attempt rule: once one handler was dialled, the plan ends

    @property
    def handler_ids(self) -> list[int]:
        return [h for step in self.steps for h in step]

    def keep(self, state: CallState, options: Mapping[int, HandlerOption]) -> None:
        """Write the plan into the call's routing state, with the dial fields of the planned handlers (``options``)."""
        planned = set(self.handler_ids)
        state.strategy, state.steps = self.strategy, self.steps
        state.skip(s.record() for s in self.skipped)
        state.sticky_handler, state.one_handler_per_call = self.sticky_handler_id, self.one_handler_per_call
        state.options = {hid: o.dial_json() for hid, o in options.items() if hid in planned}
        state.plan_index = 0


@dataclass(frozen=True)
class PeriodStarts:
    """Where the handler's current hour, day and month began (aware datetimes)."""

    hour: datetime
    day: datetime
    month: datetime


def period_starts(tz_name: str, at: datetime) -> PeriodStarts:
    """The current clock hour, day and month of ``at`` on the wall clock of ``tz_name``.

    Day and month starts are local midnights (a DST change inside the day is handled by the zone); the
    hour start is computed on the absolute timeline so a repeated fall-back hour does not reopen the count.

    Every zone's offset today is a whole number of quarter hours, so the starts only change on a quarter hour
    of UTC: they are kept per zone and quarter hour (each capped handler asks on every call), and worked out
    afresh, without keeping them, where the offset is not (a zone's local mean time, centuries ago).
    """
    utc = at.astimezone(UTC)
    quarter = utc - timedelta(minutes=utc.minute % 15, seconds=utc.second, microseconds=utc.microsecond)
    key = (tz_name, quarter)
    starts = _STARTS.get(key)
    if starts is None:
        zone = hours_rules.zone(tz_name)
        offset = quarter.astimezone(zone).utcoffset()
        if offset is None or offset % timedelta(minutes=15) or utc.astimezone(zone).utcoffset() != offset:
            return _period_starts(zone, at)
        if len(_STARTS) >= 4096:
            _STARTS.clear()
        starts = _STARTS[key] = _period_starts(zone, quarter)
    return starts


_STARTS: dict[tuple[str, datetime], PeriodStarts] = {}


def _period_starts(zone: Any, at: datetime) -> PeriodStarts:
    local = at.astimezone(zone)
    # Subtract on the absolute timeline: wall-clock arithmetic would lose the fold of a repeated hour.
    hour = at.astimezone(UTC) - timedelta(minutes=local.minute, seconds=local.second, microseconds=local.microsecond)
    day = _local_midnight(local.replace(hour=0, minute=0, second=0, microsecond=0, fold=0))
    month = _local_midnight(local.replace(day=1, hour=0, minute=0, second=0, microsecond=0, fold=0))
    return PeriodStarts(hour=hour, day=day, month=month)


def _local_midnight(value: datetime) -> datetime:
    # Round-trip through UTC: a midnight that does not exist (zones that change DST at 00:00) moves forward.
    tz = value.tzinfo
    return value.astimezone(tz) if tz is not None else value


def cap_reached(option: HandlerOption, load: HandlerLoad) -> str:
    """'' when the handler may take one more call; else which cap is reached, in words."""
    checks = (
        ("concurrency", option.concurrency_cap, load.in_progress, "in progress"),
        ("hourly", option.hourly_cap, load.hour, "this hour"),
        ("daily", option.daily_cap, load.day, "today"),
        ("monthly", option.monthly_cap, load.month, "this month"),
        ("total", option.total_cap, load.total, "in total"),
    )
    for label, cap, count, when in checks:
        if cap is not None and count >= cap:
            noun = "calls" if option.cap_counts == "connection" or label == "concurrency" else "conversions"
            return f"{label} cap {cap} reached ({count} {noun} {when})"
    return ""


def cap_frees_at(option: HandlerOption, load: HandlerLoad, at: datetime) -> datetime | None:
    """When a handler at its caps may take a call again: ``at`` (any moment: a call in progress may end) when only its
    concurrency cap is reached; the start of its next hour, day or month (in its own time zone) when that cap is
    reached; None when its total cap is (it frees up only when the operator changes it). With several caps reached,
    the latest of their times."""
    starts: PeriodStarts | None = None
    latest = at
    for cap, count, period in (
        (option.concurrency_cap, load.in_progress, ""), (option.hourly_cap, load.hour, "hour"), (option.daily_cap, load.day, "day"),
        (option.monthly_cap, load.month, "month"), (option.total_cap, load.total, "total"),
    ):
        if cap is None or count < cap or not period:
            continue
        if period == "total":
            return None
        starts = starts or period_starts(option.timezone, at)
        if period == "hour":
            ends = starts.hour + timedelta(hours=1)
        elif period == "day":  # 26 h after a midnight is inside the next day, whatever its length (DST)
            ends = period_starts(option.timezone, starts.day + timedelta(hours=26)).day
        else:
            ends = period_starts(option.timezone, starts.month + timedelta(days=32)).month
        latest = max(latest, ends)
    return latest


def eligibility(option: HandlerOption, context: CallContext, load: HandlerLoad, *, campaign_enabled: bool = True,
                else_matched: str = "", duplicate: str = "") -> Skip | None:
    """Why ``option`` cannot take this call now (None: it can). ``else_matched``: for the campaign's else route, the
    handler whose criteria matched the call (then the else route does not take it). ``duplicate``: why the caller is a
    duplicate for this handler ('' : not one; ``duplicates_find``)."""
    if not campaign_enabled:
        return Skip(option.id, option.name, DISABLED, "campaign disabled")
    if not option.enabled_in_campaign:
        return Skip(option.id, option.name, DISABLED, "disabled in this campaign")
    if not option.enabled:
        return Skip(option.id, option.name, DISABLED, "handler disabled")
    if not option.number:
        return Skip(option.id, option.name, NO_NUMBER, "no receiving number")
    try:
        open_now = hours_rules.is_open(dict(option.business_hours), option.timezone, context.at, always_open=option.always_open)
    except (hours_rules.HoursError, ValueError) as exc:
        return Skip(option.id, option.name, CLOSED, f"business hours unreadable: {exc}")
    if not open_now:
        local = context.at.astimezone(hours_rules.zone(option.timezone))
        return Skip(option.id, option.name, CLOSED, f"closed at {local:%a %H:%M} {option.timezone}")
    if option.is_else_route:
        if else_matched:
            return Skip(option.id, option.name, TAGS, f"the else route; {else_matched}'s rules match the call")
    elif option.tag_criteria:
        ok, why = tag_rules.groups_match(option.criteria_groups, context.tags)
        if not ok:
            return Skip(option.id, option.name, TAGS, why)
    if duplicate:
        return Skip(option.id, option.name, DUPLICATE, duplicate)
    capped = cap_reached(option, load)
    if capped:
        return Skip(option.id, option.name, CAPPED, capped, cap_frees_at(option, load, context.at))
    return None


@dataclass(frozen=True)
class CallerHistory:
    """This caller's latest calls with one handler (for duplicate-call routing): when the latest call it answered and
    the latest it converted (revenue side) started; None: none within the longest window asked."""

    answered_at: datetime | None = None
    converted_at: datetime | None = None


def duplicate_windows(options: Iterable[HandlerOption]) -> dict[int, int]:
    """The handlers that restrict duplicates: id -> days."""
    return {o.id: o.duplicate_days for o in options if o.duplicate_days}


def duplicates_find(options: Iterable[HandlerOption], history: Mapping[int, CallerHistory], at: datetime) -> dict[int, str]:
    """The handlers for which this caller is a duplicate: id -> why, in words ("answered 3 days ago"). A handler is
    one when it restricts duplicates (``duplicate_days``) and, within that many days before ``at``, answered this caller
    (``duplicate_on`` answered; a converted call was answered too) or converted them (``converted``)."""
    out: dict[int, str] = {}
    for option in options:
        seen = history.get(option.id)
        if not option.duplicate_days or seen is None:
            continue
        converted_only = option.duplicate_on == DUPLICATE_CONVERTED
        when = seen.converted_at if converted_only else max((t for t in (seen.answered_at, seen.converted_at) if t), default=None)
        if when is None or at - when > timedelta(days=option.duplicate_days):
            continue
        days = f"{option.duplicate_days} day{'s' if option.duplicate_days != 1 else ''}"
        out[option.id] = f"{'converted' if converted_only else 'answered'} {_ago(at - when)}; restricts duplicates for {days}"
    return out


def _ago(delta: timedelta) -> str:
    seconds = max(int(delta.total_seconds()), 0)
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            n = seconds // size
            return f"{n} {unit}{'s' if n != 1 else ''} ago"
    return "moments ago"


def _weighted_order(options: Sequence[HandlerOption], rng: random.Random) -> list[HandlerOption]:
    """A random order where each handler comes first with probability weight/sum (Efraimidis-Spirakis)."""
    keyed = [(rng.random() ** (1.0 / max(o.weight, 1)), o) for o in options]
    keyed.sort(key=lambda pair: pair[0], reverse=True)
    return [o for _, o in keyed]


def weighted_order(options: Sequence[HandlerOption], rng: random.Random) -> list[HandlerOption]:
    """``_weighted_order``, for a plan decided a part at a time (``routing.services.plan``)."""
    return _weighted_order(options, rng)


def _by_priority(options: Iterable[HandlerOption]) -> dict[int, list[HandlerOption]]:
    groups: dict[int, list[HandlerOption]] = {}
    for o in sorted(options, key=lambda o: (o.priority, o.position, o.id)):
        groups.setdefault(o.priority, []).append(o)
    return groups


def order(
    strategy: str,
    eligible: Sequence[HandlerOption],
    *,
    all_options: Sequence[HandlerOption],
    loads: CapsState,
    rr_position: int = 0,
    rng: random.Random | None = None,
) -> list[list[HandlerOption]]:
    """The dial steps for ``eligible`` handlers under ``strategy``.

    - priority_weight: lower priority number first; inside a priority a weighted random order; one per step.
    - round_robin: the eligible handlers in list (position) order, rotated by ``rr_position``.
    - sequential: the list's order, from the top, every call.
    - simultaneous: steps of up to 10 handlers rung at once, in priority then list order.
    - least_connected: fewest calls in progress first; ties by priority then list order.
    - nearest: as sequential, over positions ``routing.nearest`` renumbered by distance to the caller.
    - as drawn (``AS_DRAWN``, not an operator's choice): the order ``eligible`` comes in, one per step (a service
      that has drawn the order itself, as the priority groups do: no copy of each option renumbered).
    """
    if strategy == AS_DRAWN:
        return [[o] for o in eligible]
    rng = rng or random.Random()
    if strategy == PRIORITY_WEIGHT:
        ordered: list[HandlerOption] = []
        for _, group in sorted(_by_priority(eligible).items()):
            ordered.extend(_weighted_order(group, rng))
        return [[o] for o in ordered]
    if strategy == ROUND_ROBIN:
        # The ring is the handlers that can take this call: a disabled, closed, capped or non-matching handler
        # would otherwise hand its turn to its neighbour (one of three disabled: 2 and 4 calls, not 3 and 3).
        ring = sorted(eligible, key=lambda o: (o.position, o.id))
        if not ring:
            return []
        start = rr_position % len(ring)
        return [[o] for o in ring[start:] + ring[:start]]
    if strategy in (SEQUENTIAL, NEAREST):  # nearest: the service has numbered the handlers by distance
        return [[o] for o in sorted(eligible, key=lambda o: (o.position, o.id))]
    if strategy == SIMULTANEOUS:
        flat = sorted(eligible, key=lambda o: (o.priority, o.position, o.id))
        return [flat[i : i + SIMULTANEOUS_MAX] for i in range(0, len(flat), SIMULTANEOUS_MAX)]
    if strategy == LEAST_CONNECTED:
        return [[o] for o in sorted(eligible, key=lambda o: (loads.get(o.id, _NO_LOAD).in_progress, o.priority, o.position, o.id))]
    raise ValueError(f"unknown routing strategy '{strategy}'; expected one of {', '.join(STRATEGIES)}")


def plan_build(
    *,
    context: CallContext,
    options: Sequence[HandlerOption],
    loads: CapsState,
    strategy: str = PRIORITY_WEIGHT,
    campaign_enabled: bool = True,
    rr_position: int = 0,
    sticky_handler_id: int | None = None,
    only_handler_id: int | None = None,
    only_reason: str = IVR_CHOICE,
    only_because: str = "the caller's key",
    only_then_others: bool = False,
    one_handler_per_call: bool = False,
    duplicates: Mapping[int, str] | None = None,
    rng: random.Random | None = None,
) -> DialPlan:
    """Decide the dial plan for one call.

    Handlers that are disabled, closed now in their own time zone, whose tag criteria the call does not
    match, or whose caps are reached are skipped with the reason. ``sticky_handler_id`` (the handler who
    answered this caller last) goes first when it is eligible. ``only_handler_id`` (an IVR key, a lookup-table
    row or the landing page's destination that goes straight to a handler) limits the plan to that handler;
    every other handler is reported skipped, with its own reason when it could not have taken the call anyway,
    else ``only_reason`` (``IVR_CHOICE``, ``LOOKUP_TABLE``, ``DESTINATION``) and "{only_because} chose {handler}";
    with ``only_then_others`` (a lookup table whose operator chose "then the campaign's other handlers") that handler
    goes first and the others follow in the strategy's order, as the sticky handler does.

    The else route (a handler whose criteria are the single rule ``else``) takes the call only when no other
    handler's criteria match it (whether or not that handler can take the call now).

    ``one_handler_per_call`` (the campaign has an "attempt" conversion rule: dialling a handler sells the call)
    makes every step one handler, even when ringing several at once; the plan's steps are then the handlers
    to try in order while none could be dialled (full under its lock), and the first one dialled ends the
    plan (``attempt_rule_done``).

    ``duplicates`` (handler id -> why, ``duplicates_find``): the handlers that restrict duplicates and already had this
    caller within their window; they are skipped as ``DUPLICATE`` and the call goes to the others.
    """
    duplicates = duplicates or {}
    eligible: list[HandlerOption] = []
    skipped: list[Skip] = []
    chosen = next((o.name for o in options if o.id == only_handler_id), "") if only_handler_id is not None else ""
    else_matched = ""
    for o in options:  # a loop, not any(): asked on every call, of every handler
        if o.is_else_route:
            else_matched = _criteria_matched(options, context)
            break
    target_first = only_then_others and only_handler_id is not None
    if target_first:  # the looked-up handler first, like a sticky handler (the timeline says why: the lookup table)
        sticky_handler_id, only_handler_id = only_handler_id, None
    for option in options:
        skip = eligibility(option, context, loads.get(option.id, _NO_LOAD), campaign_enabled=campaign_enabled,
                           else_matched=else_matched, duplicate=duplicates.get(option.id, "") if duplicates else "")
        if skip is None and only_handler_id is not None and option.id != only_handler_id:
            skip = Skip(option.id, option.name, only_reason, f"{only_because} chose {chosen or 'another handler'}")
        if skip is None:
            eligible.append(option)
        else:
            skipped.append(skip)
    steps = order(strategy, eligible, all_options=options, loads=loads, rr_position=rr_position, rng=rng)
    sticky = None
    if sticky_handler_id is not None and any(o.id == sticky_handler_id for o in eligible):
        sticky = sticky_handler_id
        rest = [[o for o in step if o.id != sticky] for step in steps]
        steps = [[next(o for o in eligible if o.id == sticky)]] + [s for s in rest if s]
    if one_handler_per_call:
        steps = [[o] for step in steps for o in step]
    return DialPlan(
        strategy=strategy,
        steps=[[o.id for o in step] for step in steps],
        skipped=skipped,
        sticky_handler_id=None if target_first else sticky,
        one_handler_per_call=one_handler_per_call,
    )


def _criteria_matched(options: Sequence[HandlerOption], context: CallContext) -> str:
    """The first handler (not an else route) whose tag criteria match the call, by name; '' when none does."""
    for option in options:
        if option.tag_criteria and not option.is_else_route and tag_rules.groups_match(option.criteria_groups, context.tags)[0]:
            return option.name
    return ""


def queue_wanted(state: CallState, *, enabled: bool, at: datetime, max_wait: int) -> bool:
    """Whether a call whose plan is exhausted waits in the campaign's queue: queueing is on, the call has not been
    queued yet, no handler was dialled, and at least one eligible handler was skipped only because a cap is full and
    may free up before the caller's maximum wait ends (``frees_at``: a concurrency cap at any moment, an hourly cap
    when its hour ends ...). Handlers closed, disabled, not matching the tags, or at a cap that stays full longer
    than the wait (daily, monthly, total) are not waited for."""
    if not enabled or state.queue is not None or state.dials:
        return False
    return bool(queue_frees(state, at=at, max_wait=max_wait))


def queue_frees(state: CallState, *, at: datetime, max_wait: int) -> dict[int, int]:
    """The handlers skipped as capped that may free up within ``max_wait`` seconds of ``at``: id -> when (epoch
    seconds)."""
    until = at.timestamp() + max_wait
    out: dict[int, int] = {}
    for s in state.skipped:
        if s.reason != CAPPED or s.handler_id is None or s.frees_at is None or s.frees_at > until:
            continue
        out[s.handler_id] = max(out.get(s.handler_id, 0), s.frees_at)
    return out


def attempt_rule_done(state: CallState) -> list[SkipRecord]:
    """When the call's plan is bound by an attempt rule and a handler was dialled already: the handlers of the
    plan's remaining steps, skipped for that reason (their names from the plan's options). Else []."""
    if not state.one_handler_per_call or not state.dials:
        return []
    return plan_rest(state, reason=ATTEMPT_RULE, detail="the campaign's attempt rule dials one handler per call")


def plan_rest(state: CallState, *, reason: str, detail: str) -> list[SkipRecord]:
    """The handlers of the plan's steps from ``plan_index`` on (never dialled), skipped for ``reason``, as the call's
    routing state keeps them (no capped one: they were all eligible)."""
    return [SkipRecord(h, state.option_name(h), reason, detail) for h in state.plan_rest()]


# --- After the plan: no-answer routing and the fallback chain -------------------------------------------


# A step after the handlers' plan: a number dialled (kind "no_answer_forward" | "fallback"; ``step``: the short name
# recorded on the call), or a line's no-answer routing that is no dial ("queue" | "menu"); and how the call ends when
# nothing else is left ("voicemail" | "hangup" after the message): the call's routing state keeps them as they are.
TailStep = TailEntry
Terminal = Ending

MENUS_MAX = 20  # menus a call may hear in all: a caller going round in circles is routed after that


@dataclass(frozen=True)
class FallbackInputs:
    last_no_answer_action: str = ""  # the last dialled receiving number's: hangup | forward | voicemail | queue | menu
    last_no_answer_message: str = ""
    forward: TailStep | None = None
    number_agent: TailStep | None = None
    caller_agent: TailStep | None = None
    forwarding_number: str = ""
    company_phone: str = ""
    campaign_message: str = ""
    menu: IVRMenuData | None = None  # 'menu': the sub-menu of the call's campaign it plays (None: it has none to play)


def no_answer_stop(action: str, menu: IVRMenuData | None, *, queued: bool, menus_heard: int) -> TailStep | None:
    """A line's no-answer routing that is no dial, as the tail step it makes: 'queue' (the caller waits in the
    campaign's queue) unless the call was queued already (``queued``: a call waits in the queue at most once); 'menu'
    (its sub-menu is played) while the call may hear one more menu (``MENUS_MAX``). None: no such step; the line's
    setting then works as 'hangup' (the fallback chain, then its message)."""
    if action == "queue" and not queued:
        return TailStep("queue", "campaign's queue", "", step="queue")
    if action == "menu" and menu is not None and menus_heard < MENUS_MAX:
        return TailStep("menu", f"menu '{menu.name}'", "", step="menu", menu_id=menu.id)
    return None


def tail_build(inputs: FallbackInputs, *, already_dialed: Iterable[str] = (), queued: bool = False,
               menus_heard: int = 0) -> tuple[list[TailStep], Terminal]:
    """What happens once every handler of the plan has been tried (or none could be).

    First the no-answer routing of the last receiving number dialled: 'forward' dials its forward number;
    'voicemail' takes a message (and ends there); 'queue' puts the caller in the campaign's queue, 'menu' plays its
    sub-menu (``no_answer_stop``: once per call, and within ``MENUS_MAX``), and the fallback chain follows when the
    caller leaves the queue, or the menu without a choice. Then the fallback chain: the tracking number's assigned
    agent -> the caller's assigned agent -> the tracking number's forwarding number -> the campaign's company phone;
    then the message and hang up. A number already dialled is not dialled again.
    """
    seen = set(already_dialed)
    steps: list[TailStep] = []

    def add(step: TailStep | None) -> None:
        if step is not None and step.number and step.number not in seen:
            seen.add(step.number)
            steps.append(step)

    if inputs.last_no_answer_action == "forward":
        add(inputs.forward)
    if inputs.last_no_answer_action == "voicemail":
        return steps, Terminal("voicemail", inputs.last_no_answer_message or inputs.campaign_message or "Please leave a message after the beep.")
    stop = no_answer_stop(inputs.last_no_answer_action, inputs.menu, queued=queued, menus_heard=menus_heard)
    if stop is not None:
        steps.append(stop)
    add(inputs.number_agent)
    add(inputs.caller_agent)
    add(TailStep("fallback", "tracking number's forwarding number", inputs.forwarding_number, step="forwarding_number")
        if inputs.forwarding_number else None)
    add(TailStep("fallback", "campaign's company phone", inputs.company_phone, step="company_phone") if inputs.company_phone else None)
    message = inputs.last_no_answer_message or inputs.campaign_message or "Sorry, nobody is available to take your call."
    return steps, Terminal("hangup", message)


MAX_NO_ANSWER_FORWARDS = 5  # a chain of no-answer forwards ends after this many (and never dials a number twice)


@dataclass(frozen=True)
class NoAnswerSetting:
    """A dialled receiving number's own no-answer routing: hangup (go on, then its message), forward (its forward
    number, as a tail step), voicemail (its greeting; the call ends there), queue (the campaign's queue, then on),
    menu (its sub-menu ``menu``, then on when the caller chooses nothing)."""

    action: str
    message: str = ""
    forward: TailStep | None = None
    menu: IVRMenuData | None = None


def tail_after_no_answer(
    setting: NoAnswerSetting | None,
    *,
    rest: Sequence[TailStep],
    terminal: Terminal,
    already_dialed: Iterable[str],
    forwards: int,
    campaign_message: str = "",
    queued: bool = False,
    menus_heard: int = 0,
) -> tuple[list[TailStep], Terminal]:
    """A number of the tail (a no-answer forward, a fallback agent) rang out: its own no-answer setting decides
    what follows, as it does for a handler's number once no handler is left.

    - voicemail: its greeting (else the campaign's) and a recording; nothing else is dialled;
    - forward: its forward number is dialled next, unless that number was dialled already or ``forwards`` (the
      no-answer forwards of this call so far) reached ``MAX_NO_ANSWER_FORWARDS``: a loop of forwards ends;
    - queue, menu: the queue or the menu first (``no_answer_stop``: once per call, within ``MENUS_MAX``), then the rest;
    - hangup (or a forward, queue or menu that ends): the rest of the fallback chain, then its message when it has one.
    """
    steps = list(rest)
    if setting is None:
        return steps, terminal
    if setting.action == "voicemail":
        return [], Terminal("voicemail", setting.message or campaign_message or "Please leave a message after the beep.")
    seen = set(already_dialed)
    target = setting.forward
    if setting.action == "forward" and target is not None and target.number and target.number not in seen \
            and forwards < MAX_NO_ANSWER_FORWARDS:
        return [target, *(s for s in steps if s.number != target.number)], terminal
    if setting.message and terminal.kind == "hangup":
        terminal = Terminal("hangup", setting.message)
    stop = no_answer_stop(setting.action, setting.menu, queued=queued, menus_heard=menus_heard)
    if stop is not None:
        return [stop, *steps], terminal
    return steps, terminal


# --- Prompts -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class IVRChoice:
    digit: str
    action: str  # "tag" | "handler" | "menu" | "number" | "voicemail"
    tag_key: str = ""
    tag_value: str = ""
    handler_id: int | None = None
    label: str = ""
    response: str = ""  # said to the caller after the key press
    menu_id: int | None = None  # the sub-menu this key belongs to (None: the campaign's main menu)
    submenu_id: int | None = None  # "menu": the sub-menu it opens
    number: str = ""  # "number": the number it dials


@dataclass(frozen=True)
class IVRMenuData:
    """A sub-menu as routing sees it (the main menu's equivalents are the campaign's ivr_* fields)."""

    id: int
    name: str
    prompt: str
    timeout: int = 5
    repeat: int = 1
    default_digit: str = ""


@dataclass(frozen=True)
class IVRResult:
    """What a key press (or its absence) does: repeat the menu, open a sub-menu, dial a number, take a voicemail,
    or route (with tags, maybe to one handler)."""

    repeat: bool
    tags: dict[str, str] = field(default_factory=dict)
    handler_id: int | None = None
    note: str = ""
    response: str = ""
    submenu_id: int | None = None
    number: str = ""
    voicemail: bool = False


def ivr_choose(*, digits: str, round_no: int, repeat: int, default_digit: str, choices: Sequence[IVRChoice]) -> IVRResult:
    """Interpret a ``<Gather>`` result.

    ``round_no`` counts menus already played (1 = the first). No key, or a key no option has: play the menu
    again while ``round_no <= repeat``; then take the default option, or route as if there were no menu.
    """
    digit = (digits or "").strip()[:1]
    by_digit = {c.digit: c for c in choices}
    if digit and digit in by_digit:
        return _ivr_apply(by_digit[digit], pressed=True)
    if round_no <= repeat:
        return IVRResult(repeat=True, note=f"key '{digit}' has no option" if digit else "no key pressed")
    if default_digit and default_digit in by_digit:
        return _ivr_apply(by_digit[default_digit], pressed=False)
    return IVRResult(repeat=False, note="no option chosen; routing without a menu choice")


def _ivr_apply(choice: IVRChoice, *, pressed: bool) -> IVRResult:
    tags = {"key_pressed": choice.digit} if pressed else {"key_pressed": choice.digit, "ivr_default": "yes"}
    if choice.tag_key:  # any action may tag the call ("1: sales" then the sales menu)
        tags[choice.tag_key] = choice.tag_value or choice.digit
    how = "pressed" if pressed else "default"
    response = choice.response.strip()
    label = f" ({choice.label})" if choice.label else ""
    if choice.action == "handler" and choice.handler_id is not None:
        return IVRResult(repeat=False, tags=tags, handler_id=choice.handler_id, note=f"{how} {choice.digit}{label}: straight to a handler",
                         response=response)
    if choice.action == "menu" and choice.submenu_id is not None:
        return IVRResult(repeat=False, tags=tags, submenu_id=choice.submenu_id, note=f"{how} {choice.digit}{label}: sub-menu", response=response)
    if choice.action == "number" and choice.number:
        return IVRResult(repeat=False, tags=tags, number=choice.number, note=f"{how} {choice.digit}{label}: dialling {choice.number}",
                         response=response)
    if choice.action == "voicemail":
        return IVRResult(repeat=False, tags=tags, voicemail=True, note=f"{how} {choice.digit}{label}: voicemail", response=response)
    return IVRResult(repeat=False, tags=tags, note=f"{how} {choice.digit}: {choice.label or 'tag set'}", response=response)


def call_tags(
    *,
    caller_state: str = "",
    caller_zip: str = "",
    caller_city: str = "",
    caller_country: str = "",
    source: str = "",
    caller_name: str = "",
    attestation: str = "",
    marketing_data: Mapping[str, Any] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, str]:
    """A call's flat tag map (what tag criteria and number filters read). Geo and IVR tags win over marketing data;
    the caller's identity (``caller_name``, ``attestation``) and the spam score come only from the carrier and the
    score, never from marketing data (``calltrack.tags.IDENTITY_KEYS``)."""
    tags: dict[str, str] = {}
    for key, value in (marketing_data or {}).items():
        if isinstance(value, (str, int, float)) and not isinstance(value, bool) and key not in tag_rules.IDENTITY_KEYS:
            tags[str(key)] = str(value)
    for key, value in (
        ("caller_state", caller_state), ("caller_zip", caller_zip), ("caller_city", caller_city),
        ("caller_country", caller_country), ("source", source), ("caller_name", caller_name), ("attestation", attestation),
    ):
        if value:
            tags[key] = value
    for key, value in (extra or {}).items():
        if value not in (None, ""):
            tags[str(key)] = str(value)
    return tags


def whisper_text(template: str, *, campaign: str, source: str, city: str, state: str) -> str:
    """The whisper said to the handler: the template's tokens filled, or campaign, source and caller's place."""
    place = ", ".join(p for p in (city, state) if p) or "an unknown place"
    if template:
        out = template
        for token, value in (("{campaign}", campaign), ("{source}", source), ("{city}", city), ("{state}", state)):
            out = out.replace(token, value or "")
        return out
    parts = [f"Call from {campaign}" if campaign else "Incoming call"]
    if source:
        parts.append(f"source {source}")
    parts.append(f"caller in {place}")
    return ", ".join(parts) + "."
