"""The pure conversion decision: rules in, outcome per side out (no database)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from tracking.services.conversions import (
    CallFacts,
    ConversionRuleError,
    PriorCall,
    Rule,
    conversion_evaluate,
    rules_validate,
)

T0 = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)


def facts(**kw) -> CallFacts:
    base = dict(call_id=100, started_at=T0, campaign_id=1, handler_id=7, ended_at=T0 + timedelta(minutes=5), answered=True, talk_time=90, handler_dialed=True)
    base.update(kw)
    return CallFacts(**base)


def timer(id, seconds, revenue, payout, **kw) -> Rule:
    return Rule(id=id, kind="timer", min_duration=seconds, revenue=Decimal(revenue), payout=Decimal(payout), **kw)


def test_only_the_highest_timer_threshold_reached_pays():
    rules = [timer(1, 30, "5", "2"), timer(2, 60, "12", "6"), timer(3, 120, "30", "15")]
    out = conversion_evaluate(rules=rules, call=facts(talk_time=90))
    assert out["revenue"].converted and out["revenue"].amount == Decimal("12") and out["revenue"].rule_id == 2
    assert out["payout"].amount == Decimal("6")
    assert "timer 60 s" in out["revenue"].reason


def test_a_call_under_every_threshold_does_not_convert_and_says_by_how_much():
    out = conversion_evaluate(rules=[timer(1, 60, "10", "5")], call=facts(talk_time=42))
    assert not out["revenue"].converted
    assert out["revenue"].reason == "connected 42 s, under the 60 s timer"
    assert out["revenue"].amount == 0


def test_an_unanswered_call_is_not_connected():
    out = conversion_evaluate(rules=[timer(1, 0, "10", "5")], call=facts(answered=False, talk_time=0))
    assert out["payout"].reason == "not connected to a handler"


def test_a_zero_second_timer_pays_any_connected_call():
    out = conversion_evaluate(rules=[timer(1, 0, "10", "5")], call=facts(talk_time=1))
    assert out["revenue"].converted


def test_split_conversion_decides_revenue_and_payout_with_different_rules():
    rules = [
        timer(1, 30, "0", "4", side="payout"),
        timer(2, 120, "25", "0", side="revenue"),
    ]
    out = conversion_evaluate(rules=rules, call=facts(talk_time=60))
    assert out["payout"].converted and out["payout"].amount == Decimal("4")
    assert not out["revenue"].converted and "under the 120 s timer" in out["revenue"].reason


def test_a_handlers_own_rules_override_the_campaigns_for_that_side_only():
    rules = [
        timer(1, 30, "10", "5"),
        timer(2, 90, "40", "0", side="revenue", handler_id=7),
    ]
    out = conversion_evaluate(rules=rules, call=facts(talk_time=60, handler_id=7))
    assert not out["revenue"].converted  # handler 7's own revenue terms: 90 s
    assert out["payout"].converted and out["payout"].amount == Decimal("5")  # campaign's payout terms
    other = conversion_evaluate(rules=rules, call=facts(talk_time=60, handler_id=8))
    assert other["revenue"].converted and other["revenue"].amount == Decimal("10")


def test_attempt_rule_converts_when_a_handler_was_dialled_even_unanswered():
    rules = [Rule(id=1, kind="attempt", revenue=Decimal("3"), payout=Decimal("1"))]
    out = conversion_evaluate(rules=rules, call=facts(answered=False, talk_time=0, handler_dialed=True))
    assert out["revenue"].converted and out["revenue"].amount == Decimal("3")
    none = conversion_evaluate(rules=rules, call=facts(handler_dialed=False, handler_id=None))
    assert none["revenue"].reason == "no handler was dialled"


def test_postback_rule_waits_at_completion_then_converts_within_the_window():
    rules = [Rule(id=1, kind="postback", revenue=Decimal("50"), payout=Decimal("20"), postback_window=60)]
    call = facts()
    at_end = conversion_evaluate(rules=rules, call=call)
    assert at_end["revenue"].status == "pending" and "up to 60 min" in at_end["revenue"].reason
    on_time = conversion_evaluate(rules=rules, call=call, postback_at=call.ended_at + timedelta(minutes=59))
    assert on_time["revenue"].converted and on_time["payout"].amount == Decimal("20")


def test_a_late_postback_is_refused_with_the_reason():
    rules = [Rule(id=1, kind="postback", revenue=Decimal("50"), postback_window=60)]
    call = facts()
    late = conversion_evaluate(rules=rules, call=call, postback_at=call.ended_at + timedelta(minutes=61))
    assert not late["revenue"].converted
    assert late["revenue"].reason == "postback came 61 min after the call ended; the limit is 60 min"


def test_a_postback_leaves_timer_sides_alone():
    rules = [timer(1, 30, "0", "5", side="payout"), Rule(id=2, kind="postback", side="revenue", revenue=Decimal("50"))]
    out = conversion_evaluate(rules=rules, call=facts(), postback_at=T0 + timedelta(minutes=10))
    assert out["payout"] is None
    assert out["revenue"].converted


def test_a_repeat_caller_within_the_campaign_window_is_not_paid_again():
    rules = [timer(1, 30, "10", "5", dedupe_window=24)]
    prior = [PriorCall(90, T0 - timedelta(hours=3), 1, 8, True, True)]
    out = conversion_evaluate(rules=rules, call=facts(), prior=prior)
    assert not out["revenue"].converted and out["revenue"].amount == 0
    assert out["revenue"].reason == "repeat caller: call #90 already converted in this campaign within 24 h"


def test_a_repeat_outside_the_window_or_in_another_campaign_pays():
    rules = [timer(1, 30, "10", "5", dedupe_window=24)]
    old = [PriorCall(90, T0 - timedelta(hours=25), 1, 7, True, True)]
    elsewhere = [PriorCall(91, T0 - timedelta(hours=1), 2, 7, True, True)]
    assert conversion_evaluate(rules=rules, call=facts(), prior=old)["revenue"].converted
    assert conversion_evaluate(rules=rules, call=facts(), prior=elsewhere)["revenue"].converted


def test_a_later_call_that_converted_first_makes_this_one_a_repeat():
    rules = [timer(1, 30, "10", "5", dedupe_window=24)]
    later = [PriorCall(95, T0 + timedelta(minutes=2), 1, 7, True, True)]
    out = conversion_evaluate(rules=rules, call=facts(), prior=later)
    assert not out["revenue"].converted and "call #95" in out["revenue"].reason
    far = [PriorCall(96, T0 + timedelta(hours=30), 1, 7, True, True)]
    assert conversion_evaluate(rules=rules, call=facts(), prior=far)["revenue"].converted


def test_per_handler_dedupe_only_counts_the_same_handler():
    rules = [timer(1, 30, "10", "5", dedupe_window=24, dedupe_scope="handler")]
    other_handler = [PriorCall(90, T0 - timedelta(hours=1), 1, 8, True, True)]
    same_handler = [PriorCall(91, T0 - timedelta(hours=1), 2, 7, True, True)]
    assert conversion_evaluate(rules=rules, call=facts(), prior=other_handler)["revenue"].converted
    out = conversion_evaluate(rules=rules, call=facts(), prior=same_handler)
    assert not out["revenue"].converted and "with this handler" in out["revenue"].reason


def test_a_dedupe_count_pays_a_caller_up_to_that_many_times_within_the_window():
    rules = [timer(1, 30, "10", "5", dedupe_window=24, dedupe_max_payable=2)]
    once = [PriorCall(90, T0 - timedelta(hours=3), 1, 7, True, True)]
    assert conversion_evaluate(rules=rules, call=facts(), prior=once)["revenue"].converted
    twice = [*once, PriorCall(91, T0 - timedelta(hours=1), 1, 7, True, True)]
    out = conversion_evaluate(rules=rules, call=facts(), prior=twice)
    assert not out["revenue"].converted and out["revenue"].amount == 0
    assert out["revenue"].reason == "repeat caller: already paid 2 times in this campaign in 24 h (at most 2; calls #90, #91)"


def test_a_dedupe_count_counts_only_paid_calls_inside_the_window_and_the_scope():
    rules = [timer(1, 30, "10", "5", dedupe_window=24, dedupe_max_payable=2, dedupe_scope="handler")]
    prior = [
        PriorCall(90, T0 - timedelta(hours=3), 1, 7, True, True),
        PriorCall(91, T0 - timedelta(hours=30), 1, 7, True, True),  # outside the window
        PriorCall(92, T0 - timedelta(hours=2), 1, 8, True, True),  # another handler
        PriorCall(93, T0 - timedelta(hours=1), 1, 7, False, False),  # not paid
    ]
    assert conversion_evaluate(rules=rules, call=facts(), prior=prior)["revenue"].converted
    out = conversion_evaluate(rules=rules, call=facts(), prior=[*prior, PriorCall(94, T0 + timedelta(minutes=2), 1, 7, True, True)])
    assert not out["revenue"].converted and "already paid 2 times with this handler in 24 h (at most 2" in out["revenue"].reason


def test_dedupe_is_per_side_in_a_split_conversion():
    rules = [timer(1, 30, "10", "0", side="revenue", dedupe_window=24), timer(2, 30, "0", "5", side="payout")]
    prior = [PriorCall(90, T0 - timedelta(hours=1), 1, 7, True, True)]
    out = conversion_evaluate(rules=rules, call=facts(), prior=prior)
    assert not out["revenue"].converted
    assert out["payout"].converted  # the payout rule has no de-dupe window


def test_a_prior_call_that_did_not_convert_on_that_side_is_no_repeat():
    rules = [timer(1, 30, "10", "5", dedupe_window=24)]
    prior = [PriorCall(90, T0 - timedelta(hours=1), 1, 7, False, True)]
    out = conversion_evaluate(rules=rules, call=facts(), prior=prior)
    assert out["revenue"].converted and not out["payout"].converted


def test_no_rules_means_not_converted_with_the_reason():
    out = conversion_evaluate(rules=[], call=facts())
    assert out["revenue"].reason == "no revenue conversion rule applies"


def test_mixing_kinds_on_one_side_is_refused():
    with pytest.raises(ConversionRuleError, match="revenue side of the campaign has rules of different kinds"):
        rules_validate([timer(1, 30, "1", "1"), Rule(id=2, kind="attempt")])
    with pytest.raises(ConversionRuleError, match="2 attempt rules"):
        rules_validate([Rule(id=1, kind="attempt"), Rule(id=2, kind="attempt")])
    rules_validate([timer(1, 30, "1", "0", side="revenue"), Rule(id=2, kind="attempt", side="payout")])
    rules_validate([timer(1, 30, "1", "1"), Rule(id=2, kind="postback", handler_id=3)])
