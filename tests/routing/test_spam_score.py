"""The spam score per call (issue 28), through the signed webhooks: each StirVerstat value and caller name gets
its score, reasons and the campaign's action; the challenge lets a human through and drops a robocall; a repeat
dialer is caught on the 4th call when the rule says 3 in 5 minutes; unpaid spam never converts."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from lxml import etree

from calltrack.numbers.models import BlockedCaller
from routing.spam import SpamInputs, spam_score
from tests.numbers.factories import TrackingNumberFactory
from tests.routing.test_voice_flow import CALLER, Flow, dialled, handler
from tests.tracking.factories import CallFactory, CampaignFactory, ConversionRuleFactory, SourceFactory
from tracking.models import Call, CallStatus
from tracking.spam_rules import SpamAction, SpamRules, spam_rules_problems, spam_rules_read
from tracking.timeline import call_route_story

pytestmark = pytest.mark.django_db


def make(action=SpamAction.TAG, threshold=50, rules=None, **extra):
    campaign = CampaignFactory(name="Roofing", spam_action=action, spam_threshold=threshold, spam_rules=rules or {}, **extra)
    tn = TrackingNumberFactory(campaign=campaign, source=SourceFactory(name="Google Ads"))
    line = handler(campaign)
    return campaign, tn, line


@pytest.mark.parametrize(("verstat", "name", "score", "codes", "is_spam"), [
    ("TN-Validation-Passed-A", "JANE DOE", 0, (), False),
    ("TN-Validation-Passed-B", "", 0, (), False),
    ("TN-Validation-Passed-C", "", 20, ("attestation_c",), False),
    ("No-TN-Validation", "", 10, ("attestation_none",), False),
    ("TN-Validation-Failed-A", "", 60, ("attestation_failed",), True),
    ("TN-Validation-Passed-A", "SPAM LIKELY", 60, ("caller_name",), True),
    ("TN-Validation-Passed-C", "SCAM", 80, ("attestation_c", "caller_name"), True),
    ("TN-Validation-Failed-B", "Scam Likely", 120, ("attestation_failed", "caller_name"), True),
])
def test_each_identity_gets_its_score_reasons_and_tags(twilio, assert_valid_twiml, verstat, name, score, codes, is_spam):
    campaign, tn, line = make(SpamAction.TAG)
    doc = Flow(twilio, tn).start(StirVerstat=verstat, CallerName=name)
    assert_valid_twiml(etree.tostring(doc))
    assert dialled(doc) == [line.receiving_number.number]  # only tagged: routed either way
    call = Call.objects.get()
    spam = call.state_spam
    assert (spam.score, spam.codes, spam.is_spam) == (score, codes, is_spam)
    assert spam.action == ("tag" if is_spam else "")
    assert call.tags["spam_score"] == str(score) and call.tags["spam"] == ("yes" if is_spam else "no")
    story = call_route_story(call)[0]
    assert story.startswith(f"Spam score {score}")
    if name.upper().startswith(("SPAM", "SCAM")):
        assert f"the caller name '{name}' has the spam label" in story


def test_above_the_threshold_reject_answers_reject_with_the_reasons(twilio, assert_valid_twiml):
    campaign, tn, _ = make(SpamAction.REJECT)
    doc = Flow(twilio, tn).start(StirVerstat="TN-Validation-Failed-A", CallerName="SPAM LIKELY")
    assert_valid_twiml(etree.tostring(doc))
    assert [el.tag for el in doc] == ["Reject"]
    call = Call.objects.get()
    assert call.status == CallStatus.REJECTED
    assert call.reject_reason.startswith("spam: score 120: the caller ID's STIR/SHAKEN verification failed")
    assert call.state_spam.action == "reject"
    assert call_route_story(call)[0].endswith(": rejected as spam")


def test_below_the_threshold_reject_routes_the_call(twilio):
    _, tn, line = make(SpamAction.REJECT)
    assert dialled(Flow(twilio, tn).start(StirVerstat="TN-Validation-Passed-C")) == [line.receiving_number.number]


def test_not_payable_spam_is_routed_and_never_converts(twilio):
    campaign, tn, line = make(SpamAction.NOT_PAYABLE)
    ConversionRuleFactory(campaign=campaign)
    flow = Flow(twilio, tn)
    doc = flow.start(CallerName="SCAM")
    assert dialled(doc) == [line.receiving_number.number]
    flow.dial_result(doc, "completed", "300")
    flow.status("completed", duration="305")
    call = Call.objects.get()
    assert call.state_spam.unpaid and not call.revenue_converted and not call.payout_converted
    assert call.revenue == 0 and call.payout == 0
    assert call.conversion_reason.startswith("spam, not payable (score 60")


def test_not_payable_leaves_an_honest_callers_pay_alone(twilio):
    campaign, tn, _ = make(SpamAction.NOT_PAYABLE)
    ConversionRuleFactory(campaign=campaign)
    flow = Flow(twilio, tn)
    doc = flow.start(CallerName="JANE DOE", StirVerstat="TN-Validation-Passed-A")
    flow.dial_result(doc, "completed", "300")
    flow.status("completed", duration="305")
    call = Call.objects.get()
    assert not call.state_spam.unpaid and call.revenue_converted


def test_the_challenge_connects_a_caller_who_presses_1(twilio, assert_valid_twiml):
    campaign, tn, line = make(SpamAction.CHALLENGE, rules={"challenge_timeout": 7, "challenge_prompt": "Press 1 to talk to us."})
    flow = Flow(twilio, tn)
    doc = flow.start(StirVerstat="TN-Validation-Failed-A")
    assert_valid_twiml(etree.tostring(doc))
    gather = doc.find("Gather")
    assert gather.get("timeout") == "7" and "/voice/challenge" in gather.get("action")
    assert gather.find("Say").text == "Press 1 to talk to us."
    nxt = flow.press(doc, "1")
    assert_valid_twiml(etree.tostring(nxt))
    assert dialled(nxt) == [line.receiving_number.number]
    call = Call.objects.get()
    assert call.state_spam.action == "passed" and call.status != CallStatus.REJECTED
    assert flow.press(doc, "1") is not None and Call.objects.get().attempts.count() == 1  # a retry dials nobody new


def test_the_challenge_drops_a_robocall_that_presses_nothing(twilio, assert_valid_twiml):
    _, tn, _ = make(SpamAction.CHALLENGE)
    flow = Flow(twilio, tn)
    doc = flow.start(CallerName="SPAM LIKELY")
    end = flow.press(doc, "")
    assert_valid_twiml(etree.tostring(end))
    assert [el.tag for el in end] == ["Hangup"]
    call = Call.objects.get()
    assert call.status == CallStatus.REJECTED and call.reject_reason.startswith("spam challenge failed (no key pressed)")
    assert call.attempts.count() == 0


def test_a_repeat_dialer_is_caught_on_the_4th_call_when_the_rule_says_3_in_5_minutes(twilio):
    _, tn, _ = make(SpamAction.REJECT, rules={"repeat_calls": 3, "repeat_minutes": 5})
    other = TrackingNumberFactory(campaign=CampaignFactory())  # calls to another campaign count too
    handler(other.campaign)
    Flow(twilio, other, sid="CA0").start(StirVerstat="TN-Validation-Passed-A")
    answers = [Flow(twilio, tn, sid=f"CA{i}").start(StirVerstat="TN-Validation-Passed-A") for i in range(1, 6)]
    kinds = [[el.tag for el in doc][0] for doc in answers]
    assert kinds == ["Dial", "Dial", "Reject", "Reject", "Reject"]  # calls 1-3 of the campaign are calls 2-4 of the number
    fourth = Call.objects.get(call_sid="CA3")
    assert fourth.state_spam.codes == ("repeat_dialer",)
    assert "call 4 from this number in 5 min (more than 3 is a repeat dialer)" in fourth.reject_reason


def test_another_accounts_calls_from_the_caller_do_not_count_as_repeats(twilio):
    from calltrack.models import Account

    _, tn, line = make(SpamAction.REJECT, rules={"repeat_calls": 3, "repeat_minutes": 5})
    elsewhere = Account.objects.create(name="Another client", slug="another")
    for _ in range(5):
        CallFactory(caller_number=CALLER, started_at=timezone.now() - timedelta(minutes=1), account=elsewhere,
                    campaign=CampaignFactory(account=elsewhere))
    assert dialled(Flow(twilio, tn).start(StirVerstat="TN-Validation-Passed-A")) == [line.receiving_number.number]


def test_calls_older_than_the_window_do_not_count(twilio):
    _, tn, line = make(SpamAction.REJECT, rules={"repeat_calls": 3, "repeat_minutes": 5})
    for i in range(5):
        CallFactory(caller_number=CALLER, started_at=timezone.now() - timedelta(minutes=6 + i))
    assert dialled(Flow(twilio, tn).start(StirVerstat="TN-Validation-Passed-A")) == [line.receiving_number.number]


def test_number_rules_and_criteria_read_the_spam_tag(twilio):
    campaign = CampaignFactory(spam_action=SpamAction.TAG)
    tn = TrackingNumberFactory(campaign=campaign, filters=[{"action": "reject", "key": "spam_score", "op": "greater_than", "value": "99"}])
    handler(campaign)
    assert [el.tag for el in Flow(twilio, tn, sid="CAx").start(StirVerstat="TN-Validation-Failed-A", CallerName="SCAM")] == ["Reject"]
    assert Flow(twilio, tn, sid="CAy").start(StirVerstat="TN-Validation-Failed-A").find("Dial") is not None


def test_the_block_list_adds_its_weight_and_keeps_its_own_reason(twilio):
    campaign, tn, _ = make(SpamAction.TAG)
    BlockedCaller.objects.create(number=CALLER, reason="abusive")
    doc = Flow(twilio, tn).start()
    assert [el.tag for el in doc] == ["Reject"]
    call = Call.objects.get()
    assert call.reject_reason == "caller is blocked: abusive" and call.state_spam.codes == ("blocked",)


def test_anonymous_and_impossible_numbers_score():
    rules = spam_rules_read(action=SpamAction.TAG, threshold=50, raw={})
    assert spam_score(SpamInputs(caller="anonymous"), rules).codes == ("anonymous",)
    assert spam_score(SpamInputs(caller="+266696687"), rules).codes == ("anonymous",)
    assert spam_score(SpamInputs(caller="+11005550100"), rules).codes == ("invalid_number",)
    assert spam_score(SpamInputs(caller="+14155550100"), rules).score == 0


def test_the_operators_weights_and_labels_replace_the_defaults():
    rules = spam_rules_read(action=SpamAction.TAG, threshold=30, raw={"weights": {"caller_name": 0, "attestation_c": 35},
                                                                      "spam_names": ["robot"]})
    verdict = spam_score(SpamInputs(caller="+14155550100", attestation="passed_c", caller_name="SPAM ROBOT"), rules)
    assert (verdict.score, verdict.codes, verdict.is_spam) == (35, ("attestation_c",), True)
    assert spam_rules_read(action="off", threshold=50, raw={"weights": {"caller_name": 5}}) == SpamRules()
    assert spam_rules_problems({"weights": {"nope": 1, "caller_name": -1}, "repeat_minutes": 0, "x": 1}) == [
        "Unknown key 'x' (keys: weights, spam_names, repeat_calls, repeat_minutes, challenge_prompt, challenge_timeout, "
        "unpublished_static, spam_line_types, lookup).",
        "weights: unknown reason 'nope' (reasons: attestation_failed, attestation_c, attestation_none, caller_name, "
        "invalid_number, anonymous, blocked, repeat_dialer, unpublished_number, line_type).",
        "weights.caller_name: a whole number from 0 to 1000.",
        "repeat_minutes: a whole number from 1 to 1440.",
    ]
