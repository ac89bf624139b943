"""IVR option responses and tracking-number rules checked after the menu, played through the signed webhooks."""

from __future__ import annotations

import pytest
from lxml import etree

from tests.numbers.factories import TrackingNumberFactory
from tests.routing.test_voice_flow import Flow, dialled, handler
from tests.tracking.factories import CampaignFactory, SourceFactory
from tracking.models import Call, CallStatus, IVROption

pytestmark = pytest.mark.django_db


@pytest.fixture
def campaign():
    return CampaignFactory(name="Insurance", ivr_prompt="Under 65 press 1, 65 or over press 2.", company_phone="+13035550190")


def _flow(twilio, campaign, **number):
    tn = TrackingNumberFactory(campaign=campaign, source=SourceFactory(name="Radio"), **number)
    return Flow(twilio, tn, sid=f"CA{tn.pk:030d}")


def test_the_options_response_is_said_before_the_dial(twilio, campaign, assert_valid_twiml):
    IVROption.objects.create(campaign=campaign, digit="1", tag_key="age_band", tag_value="under65", response="Connecting you to sales.")
    h = handler(campaign)
    flow = _flow(twilio, campaign)
    doc = flow.press(flow.start(), "1")
    assert_valid_twiml(etree.tostring(doc))
    assert [el.tag for el in doc] == ["Say", "Dial"]
    assert doc.find("Say").text == "Connecting you to sales."
    assert dialled(doc) == [h.receiving_number.number]


def test_the_response_is_said_before_the_closing_message_when_nobody_can_take_the_call(twilio, campaign, assert_valid_twiml):
    campaign.company_phone = ""
    campaign.save()
    IVROption.objects.create(campaign=campaign, digit="2", tag_key="age_band", tag_value="senior", response="One moment please.")
    flow = _flow(twilio, campaign)
    doc = flow.press(flow.start(), "2")
    assert_valid_twiml(etree.tostring(doc))
    says = [el.text for el in doc.findall("Say")]
    assert says[0] == "One moment please." and len(says) == 2


def test_an_option_without_response_says_nothing_extra(twilio, campaign):
    IVROption.objects.create(campaign=campaign, digit="1", tag_key="age_band", tag_value="under65")
    handler(campaign)
    flow = _flow(twilio, campaign)
    assert [el.tag for el in flow.press(flow.start(), "1")] == ["Dial"]


def test_rules_after_the_menu_can_reject_on_the_key_pressed(twilio, campaign, assert_valid_twiml):
    IVROption.objects.create(campaign=campaign, digit="1", tag_key="age", tag_value="40")
    IVROption.objects.create(campaign=campaign, digit="2", tag_key="age", tag_value="70")
    h = handler(campaign)
    rules = [{"action": "reject", "key": "age", "op": "greater_than", "value": "64"}]
    flow = _flow(twilio, campaign, filters=rules, filters_after_ivr=True)
    menu = flow.start()
    assert menu.find("Gather") is not None  # not judged before the menu: the age is not known yet
    doc = flow.press(menu, "2")
    assert_valid_twiml(etree.tostring(doc))
    assert [el.tag for el in doc] == ["Reject"]
    call = Call.objects.get(call_sid=flow.sid)
    assert call.status == CallStatus.REJECTED
    assert call.reject_reason == "after the menu: rejected by filter age > 64 (call has 70)"
    assert call.events.filter(kind="call.rejected").exists()

    second = _flow(twilio, campaign, filters=rules, filters_after_ivr=True)
    assert dialled(second.press(second.start(), "1")) == [h.receiving_number.number]


def test_rules_before_the_menu_cannot_see_the_menus_tags(twilio, campaign):
    IVROption.objects.create(campaign=campaign, digit="2", tag_key="age", tag_value="70")
    handler(campaign)
    flow = _flow(twilio, campaign, filters=[{"action": "accept", "key": "age", "op": "present"}])
    doc = flow.start()
    assert [el.tag for el in doc] == ["Reject"]
    assert Call.objects.get(call_sid=flow.sid).reject_reason == "matched no accept filter"


def test_rules_after_the_menu_apply_at_once_when_the_campaign_has_no_menu(twilio, campaign):
    campaign.ivr_prompt = ""
    campaign.save()
    handler(campaign)
    flow = _flow(twilio, campaign, filters=[{"action": "reject", "key": "caller_state", "op": "equals", "value": "CA"}],
                 filters_after_ivr=True)
    assert [el.tag for el in flow.start(FromState="CA")] == ["Reject"]
