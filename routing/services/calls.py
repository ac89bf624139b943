"""A call's start: the tracking number, the call record, the first answer (reject, menu, dial), IVR, whisper, voicemail, fail-safe."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from calltrack import fastdb, phone
from calltrack import tags as tag_rules
from calltrack.models import Account
from calltrack.numbers.models import NumberStatus, ReceivingNumber, TrackingNumber
from calltrack.numbers.services.caller_lookup import CallerIdentity, caller_lookup_get
from routing import decision as dec
from routing import geo, lookup, tagging, twiml
from routing import spam as spam_rules
from routing.services.attribution import credit_for
from routing.services.common import (
    IncomingCall,
    TestCallOptions,
    campaign_greeting,
    campaign_voice,
    is_real_number,
)
from routing.services.config import campaign_config, campaign_ivr_choices
from routing.services.plan import counters_wanted_first, fallback_continue, route
from routing.services.slots import leg_answer
from routing.services.turn import Turn
from routing.store import lookups
from routing.store import voice as store
from tracking.call_state import CallState, MenuPosition, SpamMark
from tracking.models import (
    AttemptKind,
    Call,
    CallAttempt,
    CallStatus,
    Campaign,
)
from tracking.services.call_events import call_event_record
from tracking.spam_rules import SpamAction, SpamRules, spam_rules_read

log = logging.getLogger("calltrack.routing")


def call_by_id(call_id: int) -> Call:
    """The call named in one of our callback URLs, with its campaign, tracking number and source (one query)."""
    call = store.call_load(call_id)
    if call is None:
        raise LookupError(f"no call {call_id}")
    return call


def tracking_number_for(number: str, *, caller: str = "", turn: Turn | None = None) -> tuple[TrackingNumber | None, bool]:
    """The routable tracking number callers dialled, with its campaign, source and pool, and whether ``caller`` is
    on the block list everywhere or in the number's campaign (one query). An anonymous caller cannot be on the list
    (and is no phone number to look up): never blocked. For ``turn``'s new call (``insert_first``), the ids of the call
    and of its first leg are drawn in the same statement where the database draws ids ahead (``Turn.call_id_drawn``,
    ``Turn.leg_id_drawn``)."""
    found = store.tracking_number_load(number, caller=caller if is_real_number(caller) else "",
                                       reserve_ids=turn is not None and turn.insert_first)
    if turn is not None:
        turn.call_id_drawn, turn.leg_id_drawn = found.call_id, found.leg_id
    return found.tracking_number, found.blocked


# --- Starting a call ----------------------------------------------------------------------------------------


def call_start(turn: Turn, *, incoming: IncomingCall, tracking_number: TrackingNumber | None, at: datetime | None = None) -> bool:
    """Record the call Twilio announced and bind the turn to it. Idempotent on CallSid: a retried webhook binds the
    existing call and returns False (also when two deliveries race: the unique index decides).

    With ``turn.insert_first`` (the hot path's first try) the look-up and the savepoint are skipped and the call is
    simply inserted: a CallSid seen before then raises IntegrityError, which aborts the transaction, and the view runs
    again without ``insert_first``. Three round trips fewer for every new call. Where its id was drawn with the
    tracking number (``turn.call_id_drawn``, PostgreSQL), the call is inserted whole by the turn's flush, once
    decided (the unique index then decides there), and the campaign's counters are read here for the plan
    (``turn.counters``).
    """
    if not turn.insert_first:
        existing = lookups.call_by_sid(incoming.call_sid)
        if existing is not None:
            turn.bind(existing)
            return False
    at = at or timezone.now()
    # The same credit a text to this number at this moment gets (``routing.services.attribution``).
    credit = credit_for(tracking_number, at=at)
    campaign, source, session = credit.campaign, credit.source, credit.session
    marketing, landing, referrer, visitor = credit.marketing, credit.landing, credit.referrer, credit.visitor
    where = geo.caller_geo(
        number=incoming.caller, city=incoming.from_city, state=incoming.from_state,
        zip_code=incoming.from_zip, country=incoming.from_country,
    )
    # Tagging hours come with the campaign's cached routing configuration (no query once it is cached); a test
    # call reads them at its operator's clock.
    clock = (incoming.test.clock if incoming.test else None) or at
    config = campaign_config(campaign) if campaign is not None else None
    tagged = tagging.hours_tags(config.hours_tags, clock) if config is not None else None
    extra = dict(tagged.tags) if tagged else {}
    # The spam rules, parsed once with the campaign's cached configuration: nothing read when they are off.
    rules = config.spam if config is not None else None
    # The carrier's lookup (line type, caller name), only when the rules ask for it: a cached answer is one indexed
    # read, a miss asks the carrier (short timeout; a failure goes on without). Twilio's CallerName wins over it.
    identity = _caller_identity(incoming, rules, at=at) if rules is not None and rules.lookup else None
    caller_name = incoming.caller_name or (identity.caller_name if identity else "")
    if identity is not None and identity.line_type:
        extra[tag_rules.LINE_TYPE] = identity.line_type
    # The spam score, when the campaign's rules ask for one: its tags come with the call's INSERT, the repeat-dialer
    # count (one indexed read) only when the rules count repeats; whether the number was ever published is on its row.
    spam = _spam_verdict(incoming, rules, tracking_number, caller_name=caller_name, line_type=identity.line_type if identity else "",
                         blocked=turn.caller_blocked is True, at=at) if rules is not None else None
    if spam is not None:
        extra[tag_rules.SPAM_SCORE] = str(spam.score)
        extra[tag_rules.SPAM] = "yes" if spam.is_spam else "no"
    if session is not None and session.destination_number:
        # The number the visitor's page showed: routing "to the detected destination" and lookup tables read it.
        extra[tag_rules.DESTINATION] = tag_rules.lookup_value(tag_rules.DESTINATION, session.destination_number)
    tags = dec.call_tags(
        caller_state=where.state, caller_zip=where.zip, caller_city=where.city, caller_country=where.country,
        source=source.source_id if source else "", caller_name=caller_name, attestation=incoming.attestation,
        marketing_data=marketing, extra=extra,
    )
    state = CallState(
        test=incoming.test.state() if incoming.test else None,
        spam=SpamMark(spam.score, spam.reasons, spam.codes, spam.is_spam) if spam is not None else None,
    )
    call = fastdb.new(
        # The account is the tracking number's (on the row already loaded); a number no account holds: none.
        Call, account_id=tracking_number.account_id if tracking_number is not None else None,
        call_sid=incoming.call_sid, tracking_number=tracking_number, campaign=campaign, source=source, session=session,
        caller_number=incoming.caller, called_number=incoming.called, caller_city=where.city[:100],
        caller_state=where.state[:100], caller_zip=where.zip[:20], caller_country=where.country[:2],
        attestation=incoming.attestation, started_at=at, tags=tags, marketing_data=marketing, landing_page=landing[:2000], referrer=referrer[:2000],
        visitor_id=visitor[:64], decision=state.to_json(), answers={},
        is_test=incoming.test is not None,
    )
    if turn.insert_first:
        # The campaign's counters, for the plan (see ``routing.services.plan.route``): in the INSERT's round trip, or
        # with the call's id drawn ahead on their own, the call then written whole by the turn's flush.
        turn.counters = store.call_insert(call, counters_for=_counters_to_read_ahead(tracking_number, campaign), at=at,
                                          reserved_id=turn.call_id_drawn)
        turn.call_new = turn.call_id_drawn is not None
    else:
        existing = lookups.call_insert_or_existing(call)
        if existing is not None:
            turn.bind(existing)
            return False
    turn.bind(call, state)
    if tagged and tagged.notes:
        turn.step("call.tagged", "; ".join(tagged.notes), {"tags": tagged.tags})
    who = f"{call.caller_number} ({caller_name})" if caller_name else call.caller_number
    turn.notify("call.started", f"{who} called {call.called_number}" + (f" ({campaign})" if campaign else ""), {"tags": tags})
    if identity is not None:
        turn.step("call.caller_lookup", identity.words(),
                  {"line_type": identity.line_type, "caller_name": identity.caller_name, "cached": identity.cached, "error": identity.error})
    if spam is not None:
        turn.step("call.spam_scored", spam.summary() + (" (spam)" if spam.is_spam else ""),
                  {"score": spam.score, "reasons": list(spam.codes), "spam": spam.is_spam})
    return True


def _caller_identity(incoming: IncomingCall, rules: SpamRules, *, at: datetime) -> CallerIdentity | None:
    """The carrier's lookup of the caller, for what the rules ask that Twilio did not send (its CallerName is used
    as is): None when there is nothing to ask (an anonymous caller, or only a caller name Twilio already gave)."""
    fields = tuple(f for f in rules.lookup if not (f == "caller_name" and incoming.caller_name))
    if not fields or not is_real_number(incoming.caller):
        return None
    return caller_lookup_get(number=incoming.caller, fields=fields, now=at)


def _spam_verdict(incoming: IncomingCall, rules: SpamRules, tracking_number: TrackingNumber | None, *, caller_name: str,
                  line_type: str, blocked: bool, at: datetime) -> spam_rules.SpamVerdict | None:
    """The call's spam score under its campaign's rules (None when the campaign scores no call). The repeat-dialer
    count is this number's calls before this one in the rules' window, across the account's campaigns (one indexed
    read)."""
    if not rules.enabled:
        return None
    recent = None
    if rules.counts_repeats and is_real_number(incoming.caller):
        recent = lookups.calls_from_caller(incoming.caller, since=at - timedelta(minutes=rules.repeat_minutes), until=at,
                                           limit=rules.repeat_calls,
                                           account_id=tracking_number.account_id if tracking_number is not None else None)
    unpublished = tracking_number is not None and rules.judges_publication and spam_rules.number_unpublished(
        pool_id=tracking_number.pool_id, last_assigned_at=tracking_number.last_assigned_at, source_id=tracking_number.source_id,
        label=tracking_number.label, marketing_data=tracking_number.marketing_data, count_static=rules.unpublished_static)
    return spam_rules.spam_score(
        spam_rules.SpamInputs(caller=incoming.caller, attestation=incoming.attestation, caller_name=caller_name,
                              blocked=blocked, recent_calls=recent, unpublished=unpublished, line_type=line_type),
        rules,
    )


def campaign_spam_rules(campaign: Campaign) -> SpamRules:
    """The campaign's spam rules, read from its row (loaded with the tracking number)."""
    return spam_rules_read(action=campaign.spam_action, threshold=campaign.spam_threshold, raw=campaign.spam_rules)


def _counters_to_read_ahead(tracking_number: TrackingNumber | None, campaign: Campaign | None) -> Sequence[dec.HandlerOption]:
    """The handlers whose counters the plan will want, when the call is likely routed at once (PostgreSQL; an
    enabled campaign without a menu, a number not quarantined); else none. What a blocked caller or a direct
    target leaves unused costs nothing more: they are read in the INSERT's statement."""
    if (connection.vendor != "postgresql" or tracking_number is None or campaign is None or not campaign.enabled
            or campaign.ivr_prompt.strip() or tracking_number.status == NumberStatus.QUARANTINED):
        return []
    strategies = {campaign.routing_strategy, campaign.nearest_fallback if campaign.routing_strategy == dec.NEAREST else ""}
    return counters_wanted_first(campaign, campaign_config(campaign), every=dec.LEAST_CONNECTED in strategies)


def incoming_answer(turn: Turn, *, tracking_number: TrackingNumber | None, created: bool) -> str:
    """The TwiML for ``/voice/incoming``: reject, menu, or the first dial. A retry gets the stored answer."""
    call = turn.the_call
    stored = turn.stored_answer("incoming")
    if stored:
        return stored
    if not created:
        # The call exists without an answer: only a delivery whose routing failed leaves that (the fail-safe
        # recorded the call). Route it properly now.
        log.warning("CallSid %s: routing again a call that has no stored answer", call.call_sid)
    campaign = call.campaign
    if tracking_number is None or campaign is None:
        raise LookupError(f"no routable tracking number with a campaign for {call.called_number}")
    if tracking_number.status == NumberStatus.QUARANTINED:
        # A number being given up: its calls go to the fail-safe of the campaign it last routed for.
        reason = f"tracking number {tracking_number.number} is quarantined"
        turn.step("call.number_quarantined", f"{reason}: dialling the fail-safe")
        return turn.answer("incoming", _failsafe_in_turn(turn, reason=reason))
    if not campaign.enabled:
        turn.step("call.campaign_disabled", "campaign is disabled: dialling the fail-safe")
        return turn.answer("incoming", _failsafe_in_turn(turn, reason="campaign is disabled"))
    # A paused source (a fraud monitor, or by hand) is answered as a disabled campaign is. Its row came with the
    # tracking number (or was given to the call by its pool): no statement.
    source = call.source if call.source_id is not None else None
    if source is not None and source.paused_at is not None:
        reason = f"source {source.name} is paused" + (f" ({source.paused_reason})" if source.paused_reason else "")
        turn.step("call.source_paused", f"{reason}: dialling the fail-safe")
        return turn.answer("incoming", _failsafe_in_turn(turn, reason=reason[:200]))
    # Blocked callers and the number's filters come before any prompt. The block list was asked with the tracking
    # number (``turn.caller_blocked``); when it says blocked (or was not asked), the entry is read for its reason.
    blocked = None
    if is_real_number(call.caller_number) and turn.caller_blocked is not False:
        blocked = lookups.blocked_caller(call.caller_number, campaign_id=campaign.pk, account_id=call.account_id)
    verdict = (False, f"caller is blocked{': ' + blocked.reason if blocked.reason else ''}") if blocked else (True, "")
    menu_choices = campaign_ivr_choices(campaign) if campaign.ivr_prompt.strip() else []
    # Rules that read the menu's answers wait for them (only when there is a menu to answer).
    filters_now = not (tracking_number.filters_after_ivr and menu_choices)
    if verdict[0] and tracking_number.filters and filters_now:
        verdict = tag_rules.filter_verdict(tag_rules.validate_filters(tracking_number.filters), call.tags)
    if not verdict[0]:
        return _reject(turn, verdict[1], "incoming")
    spam = turn.state.spam
    if spam is not None and spam.is_spam:
        action = campaign_spam_rules(campaign).action
        if action == SpamAction.REJECT:
            turn.state.spam = replace(spam, action=action)
            return _reject(turn, f"spam: {spam_words(spam)}", "incoming")
        if action == SpamAction.CHALLENGE:
            return _challenge(turn, campaign, spam)
        turn.state.spam = replace(spam, action=action, unpaid=action == SpamAction.NOT_PAYABLE)
        turn.step("call.spam", f"spam ({spam_words(spam)}): " + (
            "routed, but nobody is paid for it" if action == SpamAction.NOT_PAYABLE else "tagged spam=yes, routed"))
    return _menu_or_route(turn, campaign, menu_choices, answer_key="incoming")


def _menu_or_route(turn: Turn, campaign: Campaign, menu_choices: list[Any], *, answer_key: str) -> str:
    """The campaign's menu when it has one (its greeting first), else the route."""
    call, links = turn.the_call, turn.links
    if campaign.enabled and campaign.ivr_prompt.strip() and menu_choices:
        turn.state.menu = MenuPosition()
        turn.step("ivr.menu", "menu played (round 1)")
        answer = twiml.menu(
            prompt=campaign.ivr_prompt, action=links.url("/voice/gather", call=call.pk, round=1),
            redirect=links.url("/voice/gather", call=call.pk, round=1), timeout=campaign.ivr_timeout,
            voice=campaign_voice(campaign), greeting=campaign_greeting(campaign),
        )
        return turn.answer(answer_key, answer)
    return _route_or_direct(turn, answer_key=answer_key, greeting=campaign_greeting(campaign))


def spam_words(spam: SpamMark) -> str:
    """"score 90: the caller ID's STIR/SHAKEN verification failed; ...": a spam mark in the call's words."""
    return f"score {spam.score}" + (f": {'; '.join(spam.reasons)}" if spam.reasons else "")


# --- The challenge: "press 1 to be connected" ------------------------------------------------------------------

CHALLENGE_KEY = "1"


def _challenge(turn: Turn, campaign: Campaign, spam: SpamMark) -> str:
    """Ask a caller scored as spam to press 1 (the classic robocall gate), with the rules' own timeout: the
    ``<Gather>`` and its no-key ``<Redirect>`` both go to ``/voice/challenge``."""
    call, links = turn.the_call, turn.links
    rules = campaign_spam_rules(campaign)
    turn.state.spam = replace(spam, action=SpamAction.CHALLENGE)
    turn.step("call.spam_challenge", f"spam ({spam_words(spam)}): asked to press {CHALLENGE_KEY} to be connected")
    url = links.url("/voice/challenge", call=call.pk)
    answer = twiml.menu(prompt=rules.challenge_prompt, action=url, redirect=url, timeout=rules.challenge_timeout,
                        voice=campaign_voice(campaign))
    return turn.answer("incoming", answer)


def challenge_answer(turn: Turn, *, digits: str) -> str:
    """The challenge's key (or none): 1 goes on as the call would have (the menu, else the route); anything else,
    or no key, hangs up (the call is recorded as rejected, with why). A retried webhook gets the same answer."""
    call = turn.the_call
    key = f"challenge:{digits or 'none'}"
    stored = turn.stored_answer(key)
    if stored:
        return stored
    campaign = call.campaign
    spam = turn.state.spam
    if campaign is None or spam is None or spam.action not in (SpamAction.CHALLENGE, "passed"):
        raise LookupError(f"call {call.pk} was not challenged")
    if digits.strip() == CHALLENGE_KEY:
        turn.state.spam = replace(spam, action="passed")
        turn.step("call.spam_challenge_passed", f"the caller pressed {CHALLENGE_KEY}: connected")
        menu_choices = campaign_ivr_choices(campaign) if campaign.ivr_prompt.strip() else []
        return _menu_or_route(turn, campaign, menu_choices, answer_key=key)
    why = f"pressed {digits.strip()[:8]}" if digits.strip() else "no key pressed"
    call.status, call.reject_reason, call.ended_at = CallStatus.REJECTED, f"spam challenge failed ({why}): {spam_words(spam)}"[:200], timezone.now()
    turn.step("call.rejected", call.reject_reason)
    return turn.answer(key, twiml.hangup(), "status", "reject_reason", "ended_at")


MENUS_MAX = dec.MENUS_MAX  # menus a call may hear in all: a caller going round in circles is routed after that


def gather_answer(turn: Turn, *, digits: str, round_no: int, menu_id: int | None = None, heard: int = 1) -> str:
    """A key press (or none) on the main menu or on sub-menu ``menu_id``: repeat the menu, open a sub-menu, dial
    the key's number, take a voicemail, or set the tags and route.

    ``heard`` is the menu's place among the menus the call heard (1: the main menu; its URLs carry it): the
    answer is stored under it, so a retried webhook gets the same answer while a caller's second lap of a loop
    ("Sales" 9 -> "Start over" 1 -> "Sales") is a new menu, counted; past ``MENUS_MAX`` menus the key's sub-menu
    is not played and the call is routed with the tags it has."""
    call, links = turn.the_call, turn.links
    key = f"gather:{round_no}:{digits}" if menu_id is None else f"gather:m{menu_id}:{round_no}:{digits}"
    if heard > 1:
        key += f":h{heard}"
    stored = turn.stored_answer(key)
    if stored:
        return stored
    campaign = call.campaign
    if campaign is None:
        raise LookupError("call has no campaign")
    if menu_id is None:
        prompt, timeout, repeat, default = campaign.ivr_prompt, campaign.ivr_timeout, campaign.ivr_repeat, campaign.ivr_default_digit
    else:
        menu = campaign_config(campaign).ivr_menu(menu_id)
        if menu is None:
            raise LookupError(f"campaign {campaign.pk} has no sub-menu {menu_id} opened by a key")
        prompt, timeout, repeat, default = menu.prompt, menu.timeout, menu.repeat, menu.default_digit
    result = dec.ivr_choose(digits=digits, round_no=round_no, repeat=repeat, default_digit=default, choices=campaign_ivr_choices(campaign, menu_id))
    turn.step("ivr.result", result.note, {"digits": digits, "round": round_no, "tags": result.tags, "menu": menu_id})
    played = turn.state.menu.menus if turn.state.menu is not None else 1
    if result.repeat:
        turn.state.menu_round(round_no + 1)
        answer = twiml.menu(
            prompt=prompt, action=links.url("/voice/gather", call=call.pk, round=round_no + 1, **_menu_param(menu_id, heard)),
            redirect=links.url("/voice/gather", call=call.pk, round=round_no + 1, **_menu_param(menu_id, heard)), timeout=timeout,
            voice=campaign_voice(campaign),
        )
        return turn.answer(key, answer)
    if result.tags:
        call.tags = {**call.tags, **result.tags}
        turn.save("tags")
    # The option's response ("Connecting you to sales.") is said before whatever comes next.
    said = twiml.Greeting("say", result.response, voice=campaign_voice(campaign)) if result.response else None
    if result.submenu_id is not None and played < MENUS_MAX:
        sub = campaign_config(campaign).ivr_menu(result.submenu_id)
        assert sub is not None  # loaded with the key that opens it
        turn.state.menu = MenuPosition(rounds=1, menus=played + 1)
        turn.step("ivr.menu", f"sub-menu '{sub.name}' played")
        answer = twiml.menu(
            prompt=sub.prompt, action=links.url("/voice/gather", call=call.pk, round=1, **_menu_param(sub.id, played + 1)),
            redirect=links.url("/voice/gather", call=call.pk, round=1, **_menu_param(sub.id, played + 1)), timeout=sub.timeout,
            voice=campaign_voice(campaign), greeting=said,
        )
        return turn.answer(key, answer)
    if result.submenu_id is not None:
        turn.step("ivr.menu_limit", f"{played} menus heard (at most {MENUS_MAX}): routing without playing another")
    if turn.state.tail is not None:
        # A menu played by a line's no-answer routing (or one it opened): no choice goes on down the fallback chain; a
        # key routes afresh, and what follows its route is decided again.
        if not result.tags:
            turn.step("ivr.no_choice", "no option chosen in the no-answer menu: on down the fallback chain")
            return fallback_continue(turn, answer_key=key)
        turn.state.tail_restart()
    tn = call.tracking_number
    if tn is not None and tn.filters_after_ivr and tn.filters:
        accepted, why = tag_rules.filter_verdict(tag_rules.validate_filters(tn.filters), call.tags)
        if not accepted:
            return _reject(turn, f"after the menu: {why}", key)
    if result.number:
        return _dial_number(turn, number=result.number, answer_key=key, greeting=said, why="menu key")
    if result.voicemail:
        turn.step("call.voicemail", "the caller chose the voicemail")
        answer = twiml.voicemail(message="Please leave a message after the tone.", action=links.url("/voice/voicemail", call=call.pk),
                                 voice=campaign_voice(campaign), greeting=said)
        return turn.answer(key, answer)
    if result.handler_id is not None:  # the caller chose: no lookup
        return route(turn, answer_key=key, only_handler_id=result.handler_id, greeting=said)
    return _route_or_direct(turn, answer_key=key, greeting=said)


def _direct_target(call: Call) -> lookup.Target | None:
    """The detected destination (when the campaign routes to it), else the first lookup-table row matching the
    call: one indexed query per table whose value the call has, none for a campaign without tables."""
    campaign = call.campaign
    if campaign is None:
        return None
    config = campaign_config(campaign)
    destination = call.tags.get(tag_rules.DESTINATION, "")
    if campaign.route_to_destination and destination:
        found = lookup.destination_target(destination, config.options)
        if found is not None:
            return found
        line = lookups.receiving_number_exists(destination)
        if line:
            return lookup.Target(number=line, why=f"detected destination {destination}: its receiving number")
    for table, value in lookup.table_keys(config.routing_tables, call.tags):
        row = lookups.routing_table_row(table.id, value)
        if row is not None:
            handler_id, number = row
            return lookup.Target(handler_id=handler_id, number=number or "",
                                 why=f"lookup table '{table.name}': {table.tag_key} {value}"
                                 + (" (then the campaign's other handlers)" if table.then_others and handler_id else ""),
                                 reason=dec.LOOKUP_TABLE, because=lookup.table_because(table, value), then_others=table.then_others)
    return None


def _route_or_direct(turn: Turn, *, answer_key: str, greeting: twiml.Greeting | None) -> str:
    """Route the call, straight to its detected destination or lookup-table target when it has one."""
    target = _direct_target(turn.the_call)
    if target is None:
        return route(turn, answer_key=answer_key, greeting=greeting)
    turn.step("routing.direct", target.why, {"handler": target.handler_id, "number": target.number})
    if target.handler_id is not None:
        return route(turn, answer_key=answer_key, only_handler_id=target.handler_id, greeting=greeting,
                     only_reason=target.reason, only_because=target.because, only_then_others=target.then_others)
    return _dial_number(turn, number=target.number, answer_key=answer_key, greeting=greeting, why=target.why)


def _menu_param(menu_id: int | None, heard: int = 1) -> dict[str, int]:
    """The gather URL's menu (none: the main menu) and its place among the menus heard (none: the first)."""
    return ({} if menu_id is None else {"menu": menu_id}) | ({"heard": heard} if heard > 1 else {})


def _dial_number(turn: Turn, *, number: str, answer_key: str, greeting: twiml.Greeting | None, why: str) -> str:
    """Dial one number (a menu key's, a lookup-table row's, a detected destination's): one attempt, then (not
    answered) the campaign's fallback chain, as after handlers (the ``<Dial action>`` goes to the usual
    dial-status, which finds no plan left)."""
    call, links, state = turn.the_call, turn.links, turn.state
    campaign = call.campaign
    seq = state.next_dial()
    state.plan_index = len(state.steps)
    store.attempts_insert([fastdb.new(CallAttempt, call=call, sequence=seq, kind=AttemptKind.NUMBER, number_dialed=number,
                                      started_at=timezone.now())])
    caller_id = call.caller_number if is_real_number(call.caller_number) else ""
    answer = twiml.dial(
        numbers=[twiml.DialNumber(number)], action=links.url("/voice/dial-status", call=call.pk, seq=seq), timeout=30,
        caller_id=caller_id, record=bool(campaign and campaign.record_calls), greeting=greeting,
    )
    turn.notify("call.routed", f"{why}: dialling {number}", {"sequence": seq, "number": number})
    return turn.answer(answer_key, answer)


def _reject(turn: Turn, reason: str, answer_key: str) -> str:
    """The number's rules (or the block list) refuse the call: record why and answer ``<Reject>``."""
    call = turn.the_call
    call.status, call.reject_reason, call.ended_at = CallStatus.REJECTED, reason[:200], timezone.now()
    turn.step("call.rejected", reason)
    return turn.answer(answer_key, twiml.reject(), "status", "reject_reason", "ended_at")


def voicemail_record(turn: Turn, *, recording_url: str) -> str:
    """The voicemail ``<Record action>``: keep the recording's URL, then hang up. Idempotent."""
    call = turn.the_call
    if recording_url and call.voicemail_url != recording_url:
        call.voicemail_url = recording_url[:1000]
        turn.save("voicemail_url")
        turn.step("call.voicemail_recorded", "voicemail recorded", {"url": recording_url})
    return twiml.hangup()


def whisper_answer(turn: Turn, *, attempt_id: int) -> str:
    """What the handler hears on answering (the leg is answered: mark it so its slot lasts the call)."""
    attempt = lookups.attempt_for_whisper(attempt_id)
    call = attempt.call
    turn.owned(call.account_id)
    leg_answer(turn, call, attempt, timezone.now())
    text = whisper_for(call, attempt.receiving_number)
    return twiml.whisper(text, campaign_voice(call.campaign)) if text is not None else twiml.empty()


def whisper_for(call: Call, receiving_number: ReceivingNumber | None) -> str | None:
    """The whisper said to the handler answering on ``receiving_number`` (None: that line skips the whisper): the
    tracking number's message, else the line's, else campaign, source and the caller's place. The dialled leg's
    ``<Number url>`` and the queue dial of a freed handler say the same."""
    if receiving_number is not None and receiving_number.skip_whisper:
        return None
    template = (call.tracking_number.whisper_message if call.tracking_number else "") or (receiving_number.whisper_message if receiving_number else "")
    return dec.whisper_text(
        template, campaign=call.campaign.name if call.campaign else "", source=call.source.name if call.source else "",
        city=call.caller_city, state=call.caller_state,
    )


# --- Fail-safe ---------------------------------------------------------------------------------------------------


def failsafe_number(*, call: Call | None = None, to: str = "") -> str:
    """The tracking number's fail-safe, else the campaign's, else the account's (``Account.failsafe_number``: one
    statement, only when neither has one), else CALLTRACK_FAILSAFE_NUMBER ('' when none). Never raises: a database
    that fails here leaves the setting."""
    try:
        tn = call.tracking_number if call is not None else None
        campaign = call.campaign if call is not None else None
        if tn is None and to:
            e164 = phone.to_e164_or_none(to)
            tn = TrackingNumber.objects.routable().select_related("campaign", "pool__campaign").filter(number=e164).first() if e164 else None
        if tn is not None and campaign is None:
            campaign = tn.campaign or (tn.pool.campaign if tn.pool_id else None)
        for candidate in ((tn.failsafe_number if tn else ""), (campaign.failsafe_number if campaign else "")):
            if candidate:
                return candidate
        account_id = (call.account_id if call is not None else None) or (tn.account_id if tn is not None else None)
        if account_id is not None:
            account_failsafe = Account.objects.filter(pk=account_id).values_list("failsafe_number", flat=True).first()
            if account_failsafe:
                return account_failsafe
    except Exception:  # noqa: BLE001 - the fail-safe must answer whatever broke
        log.exception("fail-safe lookup failed; using CALLTRACK_FAILSAFE_NUMBER")
    return settings.CALLTRACK_FAILSAFE_NUMBER or ""


def _failsafe_in_turn(turn: Turn, *, reason: str) -> str:
    """``failsafe_answer`` for the turn's call (a quarantined number, a disabled campaign, a paused source): the call is
    written first when it is new (``Turn.call_written``), since the fail-safe finds it by its CallSid."""
    call = turn.call_written()
    return failsafe_answer(call_sid=call.call_sid, caller=call.caller_number, reason=reason)


def failsafe_answer(*, call_sid: str, to: str = "", caller: str = "", reason: str = "routing failed",
                    test: TestCallOptions | None = None) -> str:
    """Dial the fail-safe. The call is recorded (created if the failed request's transaction took it away)
    with ``used_failsafe``, ``failsafe_reason``, a fail-safe attempt and a timeline step, when the database
    still answers; ``test``: a test call's options (a call created here stays a test call)."""
    call = None
    try:
        with transaction.atomic():
            call = _failsafe_call(call_sid=call_sid, to=to, caller=caller, test=test)
    except Exception:  # noqa: BLE001 - the fail-safe must answer whatever broke
        log.exception("CallSid %s: cannot record the call for the fail-safe", call_sid or "?")
        call = None
    number = failsafe_number(call=call, to=to)
    caller_id = phone.to_e164_or_none(caller) or ""
    if call is not None:
        try:
            with transaction.atomic():
                Call.objects.filter(pk=call.pk).update(used_failsafe=True, failsafe_reason=reason[:200])
                if number:
                    CallAttempt.objects.create(call=call, sequence=999, kind=AttemptKind.FAILSAFE, number_dialed=number)
                call_event_record(call=call, kind="call.failsafe", message=f"{reason}: {'dialling ' + number if number else 'message and hang up'}",
                                  data={"reason": reason})
        except Exception:  # noqa: BLE001
            log.exception("CallSid %s: cannot record the fail-safe", call_sid)
    return twiml.failsafe(number, caller_id=caller_id)


def _failsafe_call(*, call_sid: str, to: str, caller: str, test: TestCallOptions | None = None) -> Call | None:
    if not call_sid or len(call_sid) > 64:
        return None
    call = Call.objects.select_related("tracking_number", "campaign").filter(call_sid=call_sid).first()
    if call is not None:
        return call
    called = phone.to_e164_or_none(to) or (to or "")[:32]
    # A released number is not ours any more: its call is recorded as one to an unknown number.
    tn = TrackingNumber.objects.routable().select_related("campaign", "pool__campaign").filter(number=called).first() if called else None
    campaign = (tn.campaign or (tn.pool.campaign if tn.pool_id else None)) if tn else None
    return Call.objects.create(
        account_id=tn.account_id if tn is not None else None,
        call_sid=call_sid, tracking_number=tn, campaign=campaign, caller_number=(phone.to_e164_or_none(caller) or caller or "")[:32],
        called_number=called[:32], used_failsafe=True,
        is_test=test is not None, decision=CallState(test=test.state() if test is not None else None).to_json(),
    )
