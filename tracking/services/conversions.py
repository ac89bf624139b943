"""Conversions: whether a call converted, on each side of the deal, and what it was worth.

Two sides are decided separately (split conversions): *revenue* (what the handler pays us) and *payout*
(what we pay the source). For each side the rules that apply are the handler's own rules in the campaign
when it has any for that side, else the campaign's rules. A rule with side "both" decides both.

Kinds:
- timer: the call was connected at least ``min_duration`` seconds; with several thresholds only the
  highest one reached pays;
- attempt: a handler was dialled (routing then dials only one handler; see
  ``tracking.selectors.campaign_dials_only_one``);
- postback: the handler's CRM confirms, within ``postback_window`` minutes of the call's end.

De-duplication (Retreaver's "the maximum number of times a call can be deemed payable in a given duration"): a
rule with a ``dedupe_window`` (hours) pays a caller at most ``dedupe_max_payable`` times (blank: once) on that side
within the window: it does not pay when that many other calls of the caller started within the window (before this
one, or after it but converted first) already converted on that side, counted in the campaign or with the same
handler (``dedupe_scope``).

``conversion_evaluate`` is the pure decision (plain data in, plain data out); the services below load the
data, take the locks and write the call.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from calltrack import fastdb
from tracking.models import (
    AttemptKind,
    Call,
    Campaign,
    ConversionKind,
    ConversionRule,
    ConversionSide,
    ConversionStatus,
    DedupeScope,
    Handler,
)

SIDES = ("revenue", "payout")
WAITING = "waiting for the handler's postback"
TEST_CALL = "a test call does not convert"
ZERO = Decimal("0")


# ---------------------------------------------------------------------------------------------------------------
# Pure decision
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    id: int
    kind: str
    side: str = ConversionSide.BOTH
    handler_id: int | None = None
    min_duration: int = 0
    revenue: Decimal = ZERO
    payout: Decimal = ZERO
    postback_window: int = 1440
    dedupe_window: int | None = None
    dedupe_scope: str = DedupeScope.CAMPAIGN
    dedupe_max_payable: int = 1  # the most times a caller is paid within the window

    def covers(self, side: str) -> bool:
        return self.side in (ConversionSide.BOTH, side)

    def amount(self, side: str) -> Decimal:
        return self.revenue if side == "revenue" else self.payout

    @classmethod
    def from_model(cls, rule: ConversionRule) -> Rule:
        return cls(
            id=rule.pk, kind=rule.kind, side=rule.side, handler_id=rule.handler_id, min_duration=rule.min_duration,
            revenue=rule.revenue, payout=rule.payout, postback_window=rule.postback_window,
            dedupe_window=rule.dedupe_window, dedupe_scope=rule.dedupe_scope, dedupe_max_payable=rule.dedupe_max_payable or 1,
        )


@dataclass(frozen=True)
class CallFacts:
    """What the rules look at, about the call being judged."""

    call_id: int
    started_at: datetime
    campaign_id: int | None = None
    handler_id: int | None = None
    ended_at: datetime | None = None
    answered: bool = False
    talk_time: int = 0
    handler_dialed: bool = False
    # Answered through the fallback chain and credited to no handler (the campaign's "credit fallback answers"):
    # no handler pays for it, so the revenue side does not convert.
    fallback_uncredited: bool = False


@dataclass(frozen=True)
class PriorCall:
    """Another call of the same caller near this one, with the sides it converted on (for de-duplication)."""

    call_id: int
    started_at: datetime
    campaign_id: int | None
    handler_id: int | None
    revenue_converted: bool
    payout_converted: bool

    def converted_on(self, side: str) -> bool:
        return self.revenue_converted if side == "revenue" else self.payout_converted


@dataclass(frozen=True)
class SideOutcome:
    side: str
    status: str
    amount: Decimal = ZERO
    reason: str = ""
    rule_id: int | None = None
    kind: str = ""

    @property
    def converted(self) -> bool:
        return self.status == ConversionStatus.CONVERTED


class ConversionRuleError(ValueError):
    """The rules of a campaign contradict each other; the message names the side and who."""


def rules_for_side(rules: Iterable[Rule], *, side: str, handler_id: int | None) -> list[Rule]:
    """The rules deciding ``side``: the handler's own when it has any for that side, else the campaign's."""
    covering = [r for r in rules if r.covers(side)]
    own = [r for r in covering if handler_id is not None and r.handler_id == handler_id]
    return own or [r for r in covering if r.handler_id is None]


def rules_validate(rules: Sequence[Rule], *, handler_names: dict[int, str] | None = None) -> None:
    """Refuse rule sets with two kinds deciding the same side for the same party (which one would pay?)."""
    handler_names = handler_names or {}
    parties = {r.handler_id for r in rules}
    for handler_id in parties:
        for side in SIDES:
            kinds = {r.kind for r in rules if r.handler_id == handler_id and r.covers(side)}
            if len(kinds) > 1:
                who = f"handler {handler_names.get(handler_id, handler_id)}" if handler_id else "the campaign"
                raise ConversionRuleError(
                    f"The {side} side of {who} has rules of different kinds ({', '.join(sorted(kinds))}): "
                    "use one kind per side (split the sides to use different kinds)."
                )
            if kinds & {ConversionKind.ATTEMPT, ConversionKind.POSTBACK}:
                count = sum(1 for r in rules if r.handler_id == handler_id and r.covers(side))
                if count > 1:
                    who = f"handler {handler_names.get(handler_id, handler_id)}" if handler_id else "the campaign"
                    raise ConversionRuleError(f"The {side} side of {who} has {count} {kinds.pop()} rules; one is enough.")


def _paid_before(rule: Rule, *, side: str, call: CallFacts, prior: Iterable[PriorCall]) -> list[PriorCall]:
    """The caller's other calls within the rule's de-dupe window, in its scope, that converted on ``side`` (nearest
    first); [] without a window."""
    if not rule.dedupe_window:
        return []
    # Either direction: a call that started later but converted first (it completed sooner) was paid already.
    window = timedelta(hours=rule.dedupe_window)
    paid = []
    for p in sorted(prior, key=lambda p: (abs(p.started_at - call.started_at), p.call_id)):
        if p.call_id == call.call_id or abs(p.started_at - call.started_at) > window or not p.converted_on(side):
            continue
        if rule.dedupe_scope == DedupeScope.HANDLER:
            if call.handler_id is not None and p.handler_id == call.handler_id:
                paid.append(p)
        elif p.campaign_id == call.campaign_id:
            paid.append(p)
    return paid


def _paid(rule: Rule, *, side: str, call: CallFacts, prior: Iterable[PriorCall], why: str) -> SideOutcome:
    paid = _paid_before(rule, side=side, call=call, prior=prior)
    most = max(rule.dedupe_max_payable, 1)
    if len(paid) >= most:
        scope = "with this handler" if rule.dedupe_scope == DedupeScope.HANDLER else "in this campaign"
        if most == 1:
            reason = f"repeat caller: call #{paid[0].call_id} already converted {scope} within {rule.dedupe_window} h"
        else:
            ids = [f"#{p.call_id}" for p in sorted(paid, key=lambda p: p.started_at)]
            calls = ", ".join(ids[:5]) + (", ..." if len(ids) > 5 else "")
            reason = (f"repeat caller: already paid {len(paid)} times {scope} in {rule.dedupe_window} h "
                      f"(at most {most}; calls {calls})")
        return SideOutcome(side, ConversionStatus.NOT_CONVERTED, ZERO, reason, rule.id, rule.kind)
    return SideOutcome(side, ConversionStatus.CONVERTED, rule.amount(side), why, rule.id, rule.kind)


def postback_deadline(rule: Rule, call: CallFacts) -> datetime | None:
    """Until when a postback converts; None while the call is still going on (no limit yet)."""
    if call.ended_at is None:
        return None
    return call.ended_at + timedelta(minutes=rule.postback_window)


def side_evaluate(
    *, side: str, rules: Sequence[Rule], call: CallFacts, prior: Sequence[PriorCall] = (), postback_at: datetime | None = None
) -> SideOutcome | None:
    """Decide one side. Without ``postback_at``: the call has completed (timer and attempt rules decide,
    postback rules leave it pending). With ``postback_at``: a postback arrived; only postback rules decide,
    and None means this side does not take postbacks."""
    applicable = rules_for_side(rules, side=side, handler_id=call.handler_id)
    if applicable and side == "revenue" and call.fallback_uncredited and postback_at is None:
        rule = applicable[0]
        return SideOutcome(side, ConversionStatus.NOT_CONVERTED, ZERO, "answered by the fallback chain: no handler is credited", rule.id, rule.kind)
    if not applicable:
        if postback_at is not None:
            return None
        return SideOutcome(side, ConversionStatus.NOT_CONVERTED, ZERO, f"no {side} conversion rule applies")
    postbacks = [r for r in applicable if r.kind == ConversionKind.POSTBACK]
    attempts = [r for r in applicable if r.kind == ConversionKind.ATTEMPT]
    timers = [r for r in applicable if r.kind == ConversionKind.TIMER]

    if postback_at is not None:
        if not postbacks:
            return None
        rule = postbacks[0]
        deadline = postback_deadline(rule, call)
        if deadline is not None and call.ended_at is not None and postback_at > deadline:
            late = int((postback_at - call.ended_at).total_seconds() // 60)
            return SideOutcome(
                side, ConversionStatus.NOT_CONVERTED, ZERO,
                f"postback came {late} min after the call ended; the limit is {rule.postback_window} min",
                rule.id, rule.kind,
            )
        return _paid(rule, side=side, call=call, prior=prior, why="confirmed by the handler's postback")

    if postbacks:
        rule = postbacks[0]
        return SideOutcome(
            side, ConversionStatus.PENDING, ZERO,
            f"{WAITING} (up to {rule.postback_window} min after the call)", rule.id, rule.kind,
        )
    if attempts:
        rule = max(attempts, key=lambda r: r.amount(side))
        if not call.handler_dialed:
            return SideOutcome(side, ConversionStatus.NOT_CONVERTED, ZERO, "no handler was dialled", rule.id, rule.kind)
        return _paid(rule, side=side, call=call, prior=prior, why="a handler was dialled (attempt rule)")
    if not call.answered and call.talk_time <= 0:
        lowest = min(timers, key=lambda r: r.min_duration)
        return SideOutcome(side, ConversionStatus.NOT_CONVERTED, ZERO, "not connected to a handler", lowest.id, lowest.kind)
    reached = [r for r in timers if call.talk_time >= r.min_duration]
    if not reached:
        lowest = min(timers, key=lambda r: r.min_duration)
        return SideOutcome(
            side, ConversionStatus.NOT_CONVERTED, ZERO,
            f"connected {call.talk_time} s, under the {lowest.min_duration} s timer", lowest.id, lowest.kind,
        )
    rule = max(reached, key=lambda r: (r.min_duration, r.amount(side)))
    return _paid(rule, side=side, call=call, prior=prior, why=f"connected {call.talk_time} s (timer {rule.min_duration} s)")


def conversion_evaluate(
    *, rules: Sequence[Rule], call: CallFacts, prior: Sequence[PriorCall] = (), postback_at: datetime | None = None
) -> dict[str, SideOutcome | None]:
    """Decide both sides of ``call`` (see ``side_evaluate``). Pure: no ORM, no clock."""
    return {side: side_evaluate(side=side, rules=rules, call=call, prior=prior, postback_at=postback_at) for side in SIDES}


# ---------------------------------------------------------------------------------------------------------------
# Services
# ---------------------------------------------------------------------------------------------------------------


class ConversionRefused(Exception):
    """A postback that converts nothing; ``str()`` says why. HTTP: 422."""

    status_code = 422


class AlreadyConverted(ConversionRefused):
    """The call already converted on the sides a postback decides; nothing changed. HTTP: 409."""

    status_code = 409


@dataclass(frozen=True)
class ConversionResult:
    call: Call
    converted_sides: tuple[str, ...]


def _call_locked(call_id: int) -> Call:
    """The call, its row locked until the transaction ends (a postback, or a voice status callback whose conversion
    reads earlier calls; the voice path's common case decides on the call it loaded under its lock)."""
    return Call.objects.select_for_update().get(pk=call_id)


# In a stable order (voice routing caches them per configuration version).
def _load_rules(call: Call) -> list[Rule]:
    return campaign_rules(call.campaign_id) if call.campaign_id is not None else []


def campaign_rules(campaign_id: int) -> list[Rule]:
    """The campaign's conversion rules as plain data (one query; voice routing keeps them with the campaign's
    cached configuration, ``routing.services.config.campaign_conversion_rules``)."""
    rules = ConversionRule.objects.filter(campaign_id=campaign_id).order_by("handler_id", "kind", "min_duration", "id")
    return [Rule.from_model(rule) for rule in rules]


def _facts(call: Call) -> CallFacts:
    # A handler on the call means one was dialled: the attempts are looked at only when it has none.
    dialed = call.handler_id is not None or call.attempts.filter(kind=AttemptKind.HANDLER, handler__isnull=False).exists()
    return CallFacts(
        call_id=call.pk, started_at=call.started_at, campaign_id=call.campaign_id, handler_id=call.handler_id,
        ended_at=call.ended_at, answered=call.answered_at is not None or call.talk_time > 0, talk_time=call.talk_time,
        handler_dialed=dialed or call.handler_id is not None,
        fallback_uncredited=bool(call.fallback_step) and call.handler_id is None and call.answered_at is not None,
    )


def _prior_calls(call: Call, rules: Sequence[Rule]) -> list[PriorCall]:
    windows = [r.dedupe_window for r in rules if r.dedupe_window]
    if not windows:
        return []
    if any(r.dedupe_window for r in rules if r.dedupe_scope == DedupeScope.CAMPAIGN):
        # Serialises de-dupe decisions of a campaign: two calls of one caller completing at once cannot both
        # see "no earlier conversion" and both pay.
        Campaign.objects.select_for_update().filter(pk=call.campaign_id).first()  # type: ignore[misc]  # rules exist only for a campaign
    if call.handler_id and any(r.dedupe_window for r in rules if r.dedupe_scope == DedupeScope.HANDLER):
        Handler.objects.select_for_update().filter(pk=call.handler_id).first()
    window = timedelta(hours=max(windows))
    qs = (
        Call.objects.filter(
            caller_number=call.caller_number, started_at__gte=call.started_at - window, started_at__lte=call.started_at + window
        )
        .filter(Q(revenue_converted=True) | Q(payout_converted=True))
        .exclude(pk=call.pk)
    )
    return [
        PriorCall(p.pk, p.started_at, p.campaign_id, p.handler_id, p.revenue_converted, p.payout_converted)
        for p in qs.only("pk", "started_at", "campaign_id", "handler_id", "revenue_converted", "payout_converted")
    ]


def _apply(call: Call, outcomes: dict[str, SideOutcome | None], *, at: datetime) -> list[SideOutcome]:
    """Write the outcomes on ``call`` (never un-converting a side); return the sides that newly converted."""
    newly: list[SideOutcome] = []
    for side, outcome in outcomes.items():
        if outcome is None:
            continue
        already = call.revenue_converted if side == "revenue" else call.payout_converted
        if already:
            continue
        if side == "revenue":
            call.revenue_converted, call.revenue, call.conversion_reason = outcome.converted, outcome.amount, outcome.reason[:300]
        else:
            call.payout_converted, call.payout, call.payout_reason = outcome.converted, outcome.amount, outcome.reason[:300]
        if outcome.converted:
            newly.append(outcome)
    call.converted = call.revenue_converted or call.payout_converted
    if call.converted and call.converted_at is None:
        call.converted_at = at
    return newly


OUTCOME_FIELDS = [
    "revenue_converted", "revenue", "conversion_reason", "payout_converted", "payout", "payout_reason",
    "converted", "converted_at", "conversion_status", "conversion_evaluated_at",
]


def _combined_status(call: Call, outcomes: dict[str, SideOutcome | None]) -> str:
    if call.converted:
        return ConversionStatus.CONVERTED
    if any(o is not None and o.status == ConversionStatus.PENDING for o in outcomes.values()):
        return ConversionStatus.PENDING
    if call.conversion_evaluated_at is None:
        return ConversionStatus.PENDING
    return ConversionStatus.NOT_CONVERTED


def conversion_announcement(call: Call, newly: list[SideOutcome], source: str) -> tuple[str, dict[str, Any]]:
    """The ``call.converted`` event's message and data for the sides that just converted."""
    sides = [o.side for o in newly]
    # Both sides decided by one rule give one reason: said once.
    message = f"converted ({', '.join(sides)}): " + "; ".join(dict.fromkeys(o.reason for o in newly))
    return message, {"sides": sides, "source": source, "revenue": str(call.revenue), "payout": str(call.payout)}


def _announce(call: Call, newly: list[SideOutcome], source: str) -> None:
    from tracking.services.call_events import call_lifecycle_notify

    message, data = conversion_announcement(call, newly, source)
    call_lifecycle_notify(call=call, event="call.converted", message=message, data=data)


def call_conversion_evaluate(*, call: Call, at: datetime | None = None, locked: bool = False,
                             rules: Sequence[Rule] | None = None) -> Call:
    """Apply the conversion rules to a completed call and write the outcome, revenue and payout on it.

    Idempotent: runs once per call (``conversion_evaluated_at``), under a row lock on the Call (and on the
    Campaign when a per-campaign de-dupe window applies). A side an early postback already converted stays
    converted. Emits ``call.converted`` (webhooks go out after commit) when a side converts. ``locked``: the
    caller read ``call`` under its row lock in this transaction (it is used as it is, not read again).
    ``rules``: the campaign's rules when the caller has them (as of the campaign row read with the call).
    """
    at = at or timezone.now()
    with transaction.atomic():
        if not locked:
            call = _call_locked(call.pk)
        if call.conversion_evaluated_at is not None:
            return call
        newly = _outcome_settle(call, _load_rules(call) if rules is None else list(rules), at=at)
        fastdb.update(call, OUTCOME_FIELDS)
        if newly:
            _announce(call, newly, source="rules")
    return call


def conversion_needs_no_statement(call: Call, rules: Sequence[Rule]) -> bool:
    """Whether deciding ``call`` (read under its row lock, its campaign's ``rules`` at hand) reads nothing more:
    a handler on the call (no look at its attempts) and no de-dupe window (no earlier calls, no locks). Then
    ``call_conversion_settle_in_memory`` decides it without a statement that could fail half way, so the voice
    status callback needs no savepoint around it and writes the outcome with its own last statement."""
    return call.is_test or _unpaid_spam(call) is not None or (call.handler_id is not None and not any(r.dedupe_window for r in rules))


def _unpaid_spam(call: Call) -> str | None:
    """Why nobody is paid for ``call`` when its campaign marks spam not payable (``routing``'s spam score), else None."""
    spam = call.state_spam
    if spam is None or not spam.unpaid:
        return None
    return f"spam, not payable (score {spam.score}" + (f": {'; '.join(spam.reasons)})" if spam.reasons else ")")


def call_conversion_settle_in_memory(*, call: Call, rules: Sequence[Rule], at: datetime | None = None) -> list[SideOutcome] | None:
    """``call_conversion_evaluate`` for a call whose decision needs no statement (``conversion_needs_no_statement``):
    the outcome is decided with the pure rule evaluation and set on ``call``; the caller saves ``OUTCOME_FIELDS`` and
    announces ``call.converted`` for the sides returned (``conversion_announcement``). Returns None when the call was
    evaluated already."""
    if call.conversion_evaluated_at is not None:
        return None
    if not conversion_needs_no_statement(call, rules):
        raise ValueError("this call's conversion reads the database: use call_conversion_evaluate")
    return _outcome_settle(call, list(rules), at=at or timezone.now())


def _outcome_settle(call: Call, rules: list[Rule], *, at: datetime) -> list[SideOutcome]:
    """Decide ``call`` with ``rules`` and set the outcome on it (not saved); returns the sides that newly converted
    (to announce). A test call converts on no side: no revenue, no payout, nothing toward a conversion cap."""
    unpaid = TEST_CALL if call.is_test else _unpaid_spam(call)
    if unpaid is not None:
        _apply(call, {side: SideOutcome(side, ConversionStatus.NOT_CONVERTED, ZERO, unpaid[:300]) for side in SIDES}, at=at)
        call.conversion_evaluated_at, call.conversion_status = at, ConversionStatus.NOT_CONVERTED
        return []
    facts = _facts(call)
    prior = _prior_calls(call, rules)
    outcomes = conversion_evaluate(rules=rules, call=facts, prior=prior)
    if call.campaign_id is None:
        outcomes = {side: SideOutcome(side, ConversionStatus.NOT_CONVERTED, ZERO, "the call has no campaign") for side in SIDES}
    newly = _apply(call, outcomes, at=at)
    call.conversion_evaluated_at = at
    call.conversion_status = _combined_status(call, outcomes)
    return newly


def call_convert(*, call: Call, source: str, at: datetime | None = None) -> ConversionResult:
    """Convert ``call`` on a postback (``source``: 'api', 'postback', 'admin', ...): its postback rules decide.

    Converts once: a repeat raises ``AlreadyConverted`` and changes nothing. A postback after the rule's
    time limit, for a repeat caller, or for a call whose rules take no postback raises ``ConversionRefused``
    with the reason (the reason is also written on the call, so reports show it). Runs under a row lock on
    the Call (and the Campaign for per-campaign de-dupe), so two simultaneous postbacks convert once.
    """
    at = at or timezone.now()
    refused: str | None = None
    with transaction.atomic():
        call = _call_locked(call.pk)
        if call.is_test:
            raise ConversionRefused(TEST_CALL)
        unpaid = _unpaid_spam(call)
        if unpaid is not None:
            raise ConversionRefused(unpaid)
        rules = _load_rules(call)
        facts = _facts(call)
        decided = [s for s in SIDES if any(r.kind == ConversionKind.POSTBACK for r in rules_for_side(rules, side=s, handler_id=call.handler_id))]
        if not decided:
            kinds = sorted({r.kind for s in SIDES for r in rules_for_side(rules, side=s, handler_id=call.handler_id)})
            raise ConversionRefused(
                "this call's conversion rules take no postback" + (f" (its rules: {', '.join(kinds)})" if kinds else " (no rules)")
            )
        if all(call.revenue_converted if s == "revenue" else call.payout_converted for s in decided):
            raise AlreadyConverted(f"call #{call.pk} already converted at {call.converted_at:%Y-%m-%d %H:%M:%S} UTC")
        prior = _prior_calls(call, rules)
        outcomes = conversion_evaluate(rules=rules, call=facts, prior=prior, postback_at=at)
        newly = _apply(call, outcomes, at=at)
        call.conversion_status = _combined_status(call, {})
        fastdb.update(call, OUTCOME_FIELDS)
        if newly:
            _announce(call, newly, source=source)
        else:
            refused = "; ".join(dict.fromkeys(o.reason for o in outcomes.values() if o is not None and not o.converted))
    if refused is not None:
        raise ConversionRefused(refused)
    return ConversionResult(call=call, converted_sides=tuple(o.side for o in newly))


def call_conversions_expire(*, now: datetime | None = None) -> int:
    """Close the sides still waiting for a postback past their rule's time limit: not converted, with the reason.

    Returns how many calls changed. Safe to run at any time and twice (e.g. an hourly django-q2 schedule of
    ``tracking.tasks.conversions_expire``); each call is decided under its row lock.
    """
    now = now or timezone.now()
    waiting = Q(revenue_converted=False, conversion_reason__startswith=WAITING) | Q(
        payout_converted=False, payout_reason__startswith=WAITING
    )
    changed = 0
    for pk in Call.objects.filter(waiting, conversion_evaluated_at__isnull=False).values_list("pk", flat=True).iterator():
        with transaction.atomic():
            call = Call.objects.select_for_update().get(pk=pk)
            rules = _load_rules(call)
            facts = _facts(call)
            still_waiting = dirty = False
            for side, reason_field in (("revenue", "conversion_reason"), ("payout", "payout_reason")):
                converted = call.revenue_converted if side == "revenue" else call.payout_converted
                if converted or not getattr(call, reason_field).startswith(WAITING):
                    continue
                rule = next((r for r in rules_for_side(rules, side=side, handler_id=call.handler_id) if r.kind == ConversionKind.POSTBACK), None)
                deadline = postback_deadline(rule, facts) if rule else None
                if rule is not None and (deadline is None or deadline >= now):
                    still_waiting = True
                    continue
                window = rule.postback_window if rule else 0
                setattr(call, reason_field, f"no postback within {window} min of the call")
                dirty = True
            if not dirty:
                continue
            if call.converted:
                call.conversion_status = ConversionStatus.CONVERTED
            else:
                call.conversion_status = ConversionStatus.PENDING if still_waiting else ConversionStatus.NOT_CONVERTED
            call.save(update_fields=["conversion_status", "conversion_reason", "payout_reason"])
            changed += 1
    return changed


# ---------------------------------------------------------------------------------------------------------------
# Signed postback URLs for handlers' CRMs
# ---------------------------------------------------------------------------------------------------------------


def postback_token(*, handler_id: int) -> str:
    """The secret part of a handler's postback URL: HMAC-SHA256 of the handler id keyed with SECRET_KEY.

    Derived, not stored: nothing to leak from the database; rotating SECRET_KEY changes every handler's URL.
    """
    digest = hmac.new(settings.SECRET_KEY.encode(), f"calltrack-postback:{handler_id}".encode(), hashlib.sha256)
    return digest.hexdigest()[:40]


def postback_token_valid(*, handler_id: int, token: str) -> bool:
    # Bytes: compare_digest refuses str with non-ASCII characters (anyone may put those in the URL).
    return hmac.compare_digest(postback_token(handler_id=handler_id).encode(), (token or "").encode("utf-8", "surrogatepass"))


def postback_url(*, handler_id: int) -> str:
    """The URL a handler's CRM calls to convert a call (add ?call_id=, ?call_sid= or ?caller_number=)."""
    path = reverse("postback", kwargs={"handler_id": handler_id, "token": postback_token(handler_id=handler_id)})
    return settings.CALLTRACK_PUBLIC_BASE_URL.rstrip("/") + path
