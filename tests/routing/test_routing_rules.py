"""Routing rules that do what their help texts say, played through the signed voice webhooks (TwiML schema checked):
round robin among the handlers that can take the call, every handler not dialled shown with its true reason,
the attempt rule's one handler per call, each dialled number's own no-answer routing, and a whisper and a
leg status callback on every leg."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from lxml import etree

from calltrack.numbers.models import NoAnswerAction
from tests.numbers.factories import ReceivingNumberFactory, TrackingNumberFactory
from tests.routing.test_voice_flow import Flow, dialled, root
from tests.tracking.factories import CallFactory, CampaignFactory, CampaignHandlerFactory, HandlerFactory, SourceFactory
from tracking.models import AttemptStatus, Call, CallAttempt, ConversionRule, IVROption

pytestmark = pytest.mark.django_db


@pytest.fixture
def campaign():
    return CampaignFactory(name="Roofing", company_phone="+13035550190")


@pytest.fixture
def tn(campaign):
    return TrackingNumberFactory(campaign=campaign, source=SourceFactory(name="Google Ads"))


@pytest.fixture
def flow(twilio, tn):
    return Flow(twilio, tn)


def handler(campaign, priority=1, *, link_enabled=True, **kwargs):
    h = HandlerFactory(priority=priority, **kwargs)
    CampaignHandlerFactory(campaign=campaign, handler=h, enabled=link_enabled)
    return h


def checked(doc, assert_valid_twiml):
    assert_valid_twiml(etree.tostring(doc))
    return doc


@pytest.mark.parametrize("how", ["handler disabled", "disabled in this campaign"])
def test_round_robin_over_three_handlers_with_one_disabled_sends_six_calls_three_and_three(twilio, campaign, tn, how, assert_valid_twiml):
    campaign.routing_strategy = "round_robin"
    campaign.save()
    first = handler(campaign)
    off = handler(campaign, enabled=how != "handler disabled", link_enabled=how != "disabled in this campaign")
    third = handler(campaign)
    got = Counter()
    for n in range(6):
        doc = checked(Flow(twilio, tn, sid=f"CArr{n}").start(), assert_valid_twiml)
        got[dialled(doc)[0]] += 1
    assert got == {first.receiving_number.number: 3, third.receiving_number.number: 3}
    assert off.receiving_number.number not in got


def test_a_handler_disabled_only_in_this_campaign_is_reported_as_such(flow, campaign):
    handler(campaign, name="Off here", link_enabled=False)
    handler(campaign, name="Off everywhere", enabled=False)
    handler(campaign, name="On")
    flow.start()
    skips = {s["name"]: (s["reason"], s["detail"]) for s in Call.objects.get().decision["skipped"]}
    assert skips == {"Off here": ("disabled", "disabled in this campaign"), "Off everywhere": ("disabled", "handler disabled")}


def test_after_an_ivr_key_straight_to_a_handler_every_other_handler_is_explained(flow, campaign, admin_client, assert_valid_twiml):
    campaign.ivr_prompt = "Press 9 for the manager."
    campaign.save()
    handler(campaign, 1, name="Front desk")
    handler(campaign, 1, name="Texas desk", tag_criteria=[{"key": "caller_state", "op": "equals", "value": "TX"}])
    handler(campaign, 2, name="Night desk", link_enabled=False)
    manager = handler(campaign, 5, name="Manager")
    IVROption.objects.create(campaign=campaign, digit="9", action="handler", handler=manager)
    doc = checked(flow.press(flow.start(), "9"), assert_valid_twiml)
    assert dialled(doc) == [manager.receiving_number.number]
    call = Call.objects.get()
    skips = {s["name"]: (s["reason"], s["detail"]) for s in call.decision["skipped"]}
    assert skips["Front desk"] == ("ivr_choice", "the caller's key chose Manager")
    assert skips["Texas desk"][0] == "tag_mismatch"
    assert skips["Night desk"] == ("disabled", "disabled in this campaign")
    assert "Manager" not in skips
    page = admin_client.get(reverse("admin:tracking_call_change", args=[call.pk])).content.decode()
    for text in ("Front desk", "IVR choice", "Texas desk", "Night desk", "disabled in this campaign"):
        assert text in page


# --- The attempt rule: one handler per call --------------------------------------------------------------------


def test_with_an_attempt_rule_an_unanswered_call_dials_one_handler_then_only_the_fallback(flow, campaign, assert_valid_twiml):
    ConversionRule.objects.create(campaign=campaign, kind="attempt", revenue=10, payout=5)
    first = handler(campaign, 1, name="First")
    handler(campaign, 2, name="Second")
    doc = checked(flow.start(), assert_valid_twiml)
    assert dialled(doc) == [first.receiving_number.number]
    doc = checked(flow.dial_result(doc, "no-answer"), assert_valid_twiml)
    assert dialled(doc) == [campaign.company_phone]
    doc = checked(flow.dial_result(doc, "no-answer"), assert_valid_twiml)
    assert [el.tag for el in doc] == ["Say", "Hangup"]
    flow.status("completed", duration="40")
    call = Call.objects.get()
    assert list(call.attempts.order_by("sequence").values_list("number_dialed", flat=True)) == [
        first.receiving_number.number, campaign.company_phone]
    skips = {s["name"]: (s["reason"], s["detail"]) for s in call.decision["skipped"]}
    assert skips == {"Second": ("attempt_rule", "the campaign's attempt rule dials one handler per call")}
    assert call.revenue_converted and call.payout_converted
    converted = call.events.get(kind="call.converted").message
    assert converted.count("a handler was dialled (attempt rule)") == 1


def test_with_an_attempt_rule_ring_all_rings_one_handler(flow, campaign, assert_valid_twiml):
    campaign.routing_strategy = "simultaneous"
    campaign.save()
    ConversionRule.objects.create(campaign=campaign, kind="attempt", revenue=10)
    first, _, _ = (handler(campaign, 1) for _ in range(3))
    doc = checked(flow.start(), assert_valid_twiml)
    assert dialled(doc) == [first.receiving_number.number]


def test_a_capped_handler_does_not_use_up_the_attempt(flow, campaign):
    ConversionRule.objects.create(campaign=campaign, kind="attempt", revenue=10)
    full = handler(campaign, 1, name="Full", concurrency_cap=1)
    free = handler(campaign, 2, name="Free")
    CallAttempt.objects.create(
        call=CallFactory(), handler=full, sequence=1, number_dialed=full.receiving_number.number, holds_slot=True,
        slot_expires_at=timezone.now() + timedelta(minutes=5),
    )
    doc = flow.start()
    assert dialled(doc) == [free.receiving_number.number]


def test_an_attempt_rule_added_in_the_admin_applies_to_the_next_call(flow, campaign, twilio, tn, admin_client):
    handler(campaign, 1), handler(campaign, 2)
    Flow(twilio, tn, sid="CAbefore").start()  # the campaign's configuration is now cached
    response = admin_client.post(reverse("admin:tracking_conversionrule_add"), {
        "campaign": campaign.pk, "side": "both", "kind": "attempt", "min_duration": 0, "revenue": "10", "payout": "0",
        "postback_window": 1440, "dedupe_scope": "campaign",
    })
    assert response.status_code == 302, response.content.decode()[:2000]
    doc = flow.start()
    doc = flow.dial_result(doc, "no-answer")
    assert dialled(doc) == [campaign.company_phone]


# --- No-answer routing: each dialled number applies its own setting; whisper and leg status on every leg ---------


def ring_out(flow, doc, assert_valid_twiml, limit=12):
    """Let every dialled number ring out; the numbers dialled, in order, and the final answer."""
    seen = [dialled(doc)[0]]
    for _ in range(limit):
        doc = checked(flow.dial_result(doc, "no-answer"), assert_valid_twiml)
        if doc.find("Dial") is None:
            return seen, doc
        seen.append(dialled(doc)[0])
    raise AssertionError(f"the call never ended: {seen}")


def test_a_forward_targets_own_voicemail_takes_the_message(flow, campaign, assert_valid_twiml):
    desk = ReceivingNumberFactory(label="Desk", no_answer_action=NoAnswerAction.VOICEMAIL, no_answer_message="Desk voicemail.")
    line = ReceivingNumberFactory(label="Line", no_answer_action=NoAnswerAction.FORWARD, no_answer_forward_to=desk)
    handler(campaign, receiving_number=line)
    seen, end = ring_out(flow, flow.start(), assert_valid_twiml)
    assert seen == [line.number, desk.number]  # not the company phone: the desk takes messages
    assert [el.tag for el in end] == ["Say", "Record", "Hangup"] and end.find("Say").text == "Desk voicemail."


def test_a_forward_targets_own_forward_is_dialled_then_its_message_is_said(flow, campaign, assert_valid_twiml):
    last = ReceivingNumberFactory(label="Last", no_answer_message="Last desk is closed.")
    middle = ReceivingNumberFactory(label="Middle", no_answer_action=NoAnswerAction.FORWARD, no_answer_forward_to=last)
    line = ReceivingNumberFactory(label="Line", no_answer_action=NoAnswerAction.FORWARD, no_answer_forward_to=middle)
    handler(campaign, receiving_number=line)
    seen, end = ring_out(flow, flow.start(), assert_valid_twiml)
    assert seen == [line.number, middle.number, last.number, campaign.company_phone]
    assert end.find("Say").text == "Last desk is closed."
    kinds = list(CallAttempt.objects.order_by("sequence").values_list("kind", flat=True))
    assert kinds == ["handler", "no_answer_forward", "no_answer_forward", "fallback"]


def test_a_loop_of_forwards_ends(flow, campaign, assert_valid_twiml):
    a = ReceivingNumberFactory(label="A")
    b = ReceivingNumberFactory(label="B", no_answer_action=NoAnswerAction.FORWARD, no_answer_forward_to=a)
    a.no_answer_action, a.no_answer_forward_to = NoAnswerAction.FORWARD, b
    a.save()
    handler(campaign, receiving_number=a)
    seen, end = ring_out(flow, flow.start(), assert_valid_twiml)
    assert seen == [a.number, b.number, campaign.company_phone]
    assert [el.tag for el in end] == ["Say", "Hangup"]


def test_a_long_chain_of_forwards_stops_at_the_bound(flow, campaign, assert_valid_twiml):
    from routing.decision import MAX_NO_ANSWER_FORWARDS

    lines = [ReceivingNumberFactory(label=f"L{i}") for i in range(MAX_NO_ANSWER_FORWARDS + 3)]
    for here, there in zip(lines, lines[1:], strict=False):
        here.no_answer_action, here.no_answer_forward_to = NoAnswerAction.FORWARD, there
        here.save()
    handler(campaign, receiving_number=lines[0])
    seen, _ = ring_out(flow, flow.start(), assert_valid_twiml, limit=20)
    assert seen == [line.number for line in lines[: MAX_NO_ANSWER_FORWARDS + 1]] + [campaign.company_phone]


def test_a_fallback_agents_own_voicemail_applies(flow, campaign, tn, assert_valid_twiml):
    agent = ReceivingNumberFactory(label="Agent", no_answer_action=NoAnswerAction.VOICEMAIL, no_answer_message="Agent voicemail.")
    tn.assigned_agent = agent
    tn.save()
    handler(campaign)
    seen, end = ring_out(flow, flow.start(), assert_valid_twiml)
    assert seen[1:] == [agent.number]
    assert end.find("Say").text == "Agent voicemail."


def test_every_leg_of_the_tail_gets_a_whisper_and_a_status_callback(flow, campaign, tn, twilio, assert_valid_twiml):
    forward_to = ReceivingNumberFactory(label="Overflow", whisper_message="Overflow call from {state}")
    line = ReceivingNumberFactory(no_answer_action=NoAnswerAction.FORWARD, no_answer_forward_to=forward_to)
    handler(campaign, receiving_number=line)
    tn.forwarding_number = "+13035550180"
    tn.save()
    doc = flow.start()
    legs = [doc.find("Dial/Number")]
    for _ in range(3):
        doc = checked(flow.dial_result(doc, "no-answer"), assert_valid_twiml)
        legs.append(doc.find("Dial/Number"))
    assert [leg.text for leg in legs] == [line.number, forward_to.number, "+13035550180", campaign.company_phone]
    for leg in legs:
        assert "/voice/whisper?attempt=" in leg.get("url") and "/voice/attempt-status?attempt=" in leg.get("statusCallback")
    said = root(twilio.post(legs[1].get("url"), {"CallSid": "CAleg"}))
    assert said.find("Say").text == "Overflow call from CA"
    root(twilio.post(legs[3].get("statusCallback"), {"CallSid": "CAleg3", "CallStatus": "completed", "CallDuration": "12"}))
    assert CallAttempt.objects.get(number_dialed=campaign.company_phone).status == AttemptStatus.COMPLETED


def test_a_handlers_line_reached_by_a_forward_counts_toward_its_caps_and_talk_time(flow, campaign, twilio, assert_valid_twiml):
    capped = handler(campaign, 1, name="Capped", concurrency_cap=1)
    line = ReceivingNumberFactory(no_answer_action=NoAnswerAction.FORWARD, no_answer_forward_to=capped.receiving_number)
    campaign.campaign_handlers.filter(handler=capped).update(enabled=False)  # reached only by the forward
    first = handler(campaign, 2, receiving_number=line)
    doc = flow.dial_result(flow.start(), "no-answer")
    assert dialled(doc) == [capped.receiving_number.number]
    leg = CallAttempt.objects.get(kind="no_answer_forward")
    assert (leg.handler_id, leg.holds_slot, leg.counted) == (capped.pk, True, True)
    other = Flow(twilio, flow.tn, sid="CAother")
    campaign.campaign_handlers.filter(handler=capped).update(enabled=True)
    assert dialled(other.start()) == [first.receiving_number.number]  # Capped's one slot is held by the forward leg
    flow.dial_result(doc, "completed", "42")
    call = Call.objects.get(call_sid=flow.sid)
    assert (call.handler_id, call.talk_time) == (capped.pk, 42)


def test_with_an_attempt_rule_a_no_answer_forward_to_another_handlers_line_is_not_dialled(flow, campaign, assert_valid_twiml):
    ConversionRule.objects.create(campaign=campaign, kind="attempt", revenue=10)
    other = HandlerFactory(name="Other buyer")
    line = ReceivingNumberFactory(no_answer_action=NoAnswerAction.FORWARD, no_answer_forward_to=other.receiving_number)
    handler(campaign, receiving_number=line)
    seen, _ = ring_out(flow, flow.start(), assert_valid_twiml)
    assert seen == [line.number, campaign.company_phone]
    skipped = Call.objects.get().decision["skipped"]
    assert [(s["handler_id"], s["reason"]) for s in skipped] == [(other.pk, "attempt_rule")]


def test_handlers_left_in_the_plan_when_the_call_is_answered_are_explained(flow, campaign, assert_valid_twiml):
    first = handler(campaign, 1, name="First")
    handler(campaign, 2, name="Second")
    handler(campaign, 3, name="Third")
    doc = flow.dial_result(flow.start(), "no-answer")
    checked(flow.dial_result(doc, "completed", "30"), assert_valid_twiml)
    skips = {s["name"]: (s["reason"], s["detail"]) for s in Call.objects.get().decision["skipped"]}
    assert skips == {"Third": ("answered_before", "Second answered first")}
    assert first.name not in skips


def test_handlers_left_in_the_plan_when_the_caller_hangs_up_are_explained(flow, campaign):
    handler(campaign, 1, name="First")
    handler(campaign, 2, name="Second")
    flow.dial_result(flow.start(), "canceled")
    skips = {s["name"]: s["reason"] for s in Call.objects.get().decision["skipped"]}
    assert skips == {"Second": "caller_hung_up"}
