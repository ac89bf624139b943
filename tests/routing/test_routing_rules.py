"""Routing rules that do what their help texts say, played through the signed voice webhooks (TwiML schema checked):
round robin among the handlers that can take the call, every handler not dialled shown with its true reason,
and the attempt rule's one handler per call."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from lxml import etree

from tests.numbers.factories import TrackingNumberFactory
from tests.routing.test_voice_flow import Flow, dialled
from tests.tracking.factories import CallFactory, CampaignFactory, CampaignHandlerFactory, HandlerFactory, SourceFactory
from tracking.models import Call, CallAttempt, ConversionRule, IVROption

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
