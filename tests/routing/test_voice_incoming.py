"""Signed /voice/incoming: the first answer for every kind of call."""

from __future__ import annotations

import pytest
from lxml import etree

from calltrack.numbers.models import BlockedCaller
from tests.numbers.factories import ReceivingNumberFactory, TrackingNumberFactory
from tests.tracking.factories import CampaignFactory, CampaignHandlerFactory, HandlerFactory, SourceFactory
from tracking.models import AttemptStatus, Call, CallAttempt, CallStatus, IVROption

pytestmark = pytest.mark.django_db
CALLER = "+14155550100"


def incoming(twilio, to, sid="CA0001", caller=CALLER, **extra):
    params = {"CallSid": sid, "From": caller, "To": to, "CallStatus": "ringing", **extra}
    return twilio.post("/voice/incoming", params)


def doc(response):
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "text/xml"
    return etree.fromstring(response.content)


@pytest.fixture
def campaign():
    return CampaignFactory(name="Roofing", failsafe_number="+13035550199")


@pytest.fixture
def tracking_number(campaign):
    return TrackingNumberFactory(campaign=campaign, source=SourceFactory(name="Google Ads"))


def test_a_call_dials_the_only_open_handler_with_whisper_and_callbacks(twilio, campaign, tracking_number, assert_valid_twiml):
    handler = HandlerFactory(receiving_number=ReceivingNumberFactory(extension_digits="123", digits_delay=1), ring_timeout=20)
    CampaignHandlerFactory(campaign=campaign, handler=handler)
    response = incoming(twilio, tracking_number.number)
    assert_valid_twiml(response.content)
    dial = doc(response).find("Dial")
    assert dial.get("answerOnBridge") == "true"
    assert dial.get("timeout") == "20"
    assert dial.get("callerId") == CALLER
    assert dial.get("record") is None
    assert "/voice/dial-status?" in dial.get("action")
    (number,) = dial.findall("Number")
    assert number.text == handler.receiving_number.number
    assert number.get("sendDigits") == "ww123"
    assert "/voice/whisper?attempt=" in number.get("url")
    call = Call.objects.get(call_sid="CA0001")
    assert call.campaign == campaign and call.source == tracking_number.source
    assert call.caller_state == "CA" and call.caller_city == "San Francisco"
    attempt = call.attempts.get()
    assert attempt.handler == handler and attempt.holds_slot and attempt.counted
    assert attempt.status == AttemptStatus.DIALING
    assert list(call.events.values_list("kind", flat=True)) == ["call.started", "call.routed"]


def test_twilio_geo_parameters_win_over_the_geocoder(twilio, campaign, tracking_number):
    CampaignHandlerFactory(campaign=campaign)
    incoming(twilio, tracking_number.number, FromState="NV", FromCity="RENO", FromZip="89501")
    call = Call.objects.get()
    assert (call.caller_state, call.caller_city, call.caller_zip) == ("NV", "RENO", "89501")
    assert call.tags["caller_zip"] == "89501"


def test_a_retry_of_the_same_callsid_returns_the_same_answer_and_no_second_call(twilio, campaign, tracking_number):
    CampaignHandlerFactory(campaign=campaign)
    first = incoming(twilio, tracking_number.number)
    again = incoming(twilio, tracking_number.number)
    assert first.content == again.content
    assert Call.objects.count() == 1
    assert CallAttempt.objects.count() == 1


def test_recording_campaign_records_the_dial(twilio, campaign, tracking_number):
    campaign.record_calls = True
    campaign.save()
    CampaignHandlerFactory(campaign=campaign)
    assert doc(incoming(twilio, tracking_number.number)).find("Dial").get("record") == "record-from-answer-dual"


def test_greeting_is_said_before_the_dial(twilio, campaign, tracking_number, assert_valid_twiml):
    campaign.greeting_kind, campaign.greeting_text, campaign.greeting_language = "say", "Thanks for calling.", "en-GB"
    campaign.save()
    CampaignHandlerFactory(campaign=campaign)
    response = incoming(twilio, tracking_number.number)
    assert_valid_twiml(response.content)
    root = doc(response)
    assert [el.tag for el in root] == ["Say", "Dial"]
    say = root.find("Say")
    assert say.text == "Thanks for calling." and say.get("language") == "en-GB" and say.get("voice") == "Polly.Joanna"


def test_played_greeting(twilio, campaign, tracking_number, assert_valid_twiml):
    campaign.greeting_kind, campaign.greeting_url = "play", "https://example.com/hello.mp3"
    campaign.save()
    CampaignHandlerFactory(campaign=campaign)
    response = incoming(twilio, tracking_number.number)
    assert_valid_twiml(response.content)
    assert doc(response).find("Play").text == "https://example.com/hello.mp3"


def test_blocked_caller_is_rejected_and_recorded(twilio, campaign, tracking_number, assert_valid_twiml):
    CampaignHandlerFactory(campaign=campaign)
    BlockedCaller.objects.create(number=CALLER, reason="spam")
    response = incoming(twilio, tracking_number.number)
    assert_valid_twiml(response.content)
    assert doc(response).find("Reject") is not None
    call = Call.objects.get()
    assert call.status == CallStatus.REJECTED and "spam" in call.reject_reason
    assert not call.attempts.exists()


def test_caller_blocked_in_another_campaign_is_not_rejected(twilio, campaign, tracking_number):
    CampaignHandlerFactory(campaign=campaign)
    BlockedCaller.objects.create(number=CALLER, campaign=CampaignFactory())
    assert doc(incoming(twilio, tracking_number.number)).find("Dial") is not None


def test_number_filter_rejects_by_caller_state(twilio, campaign, tracking_number):
    tracking_number.filters = [{"action": "reject", "key": "caller_state", "op": "one_of", "value": ["CA"]}]
    tracking_number.save()
    CampaignHandlerFactory(campaign=campaign)
    assert doc(incoming(twilio, tracking_number.number)).find("Reject") is not None
    assert Call.objects.get().reject_reason.startswith("rejected by filter caller_state")


def test_number_accept_filter_lets_matching_source_through(twilio, campaign, tracking_number):
    tracking_number.filters = [{"action": "accept", "key": "source", "op": "equals", "value": tracking_number.source.source_id}]
    tracking_number.save()
    CampaignHandlerFactory(campaign=campaign)
    assert doc(incoming(twilio, tracking_number.number)).find("Dial") is not None


def test_number_accept_filter_rejects_other_zips(twilio, campaign, tracking_number):
    tracking_number.filters = [{"action": "accept", "key": "caller_zip", "op": "one_of", "value": ["10001"]}]
    tracking_number.save()
    CampaignHandlerFactory(campaign=campaign)
    assert doc(incoming(twilio, tracking_number.number, FromZip="94105")).find("Reject") is not None
    assert Call.objects.get().reject_reason == "matched no accept filter"


def test_ivr_menu_is_played_when_the_campaign_has_one(twilio, campaign, tracking_number, assert_valid_twiml):
    campaign.ivr_prompt = "For sales press 1."
    campaign.save()
    IVROption.objects.create(campaign=campaign, digit="1", tag_key="department", tag_value="sales")
    CampaignHandlerFactory(campaign=campaign)
    response = incoming(twilio, tracking_number.number)
    assert_valid_twiml(response.content)
    root = doc(response)
    gather = root.find("Gather")
    assert gather.get("numDigits") == "1" and "/voice/gather?" in gather.get("action")
    assert gather.find("Say").text == "For sales press 1."
    assert "/voice/gather?" in root.find("Redirect").text
    assert not CallAttempt.objects.exists()


def test_pool_number_call_carries_the_visitors_marketing_data(twilio, campaign):
    from tests.numbers.factories import NumberPoolFactory, NumberSessionFactory

    pool = NumberPoolFactory(campaign=campaign, source=SourceFactory(name="Site"))
    number = TrackingNumberFactory(kind="pool", pool=pool, campaign=None)
    NumberSessionFactory(pool=pool, tracking_number=number, visitor_id="vis-1", landing_page="https://example.com/lp",
                         marketing_data={"utm_source": "google", "gclid": "abc"})
    handler = HandlerFactory(tag_criteria=[{"key": "utm_source", "op": "equals", "value": "google"}])
    CampaignHandlerFactory(campaign=campaign, handler=handler)
    assert doc(incoming(twilio, number.number)).find("Dial/Number").text == handler.receiving_number.number
    call = Call.objects.get()
    assert call.campaign == campaign and call.source == pool.source
    assert call.visitor_id == "vis-1" and call.landing_page == "https://example.com/lp"
    assert call.marketing_data == {"utm_source": "google", "gclid": "abc"} and call.tags["gclid"] == "abc"


@pytest.mark.parametrize("caller", ["anonymous", "Restricted", "+266696687", "+1415", "client:alice"])
def test_withheld_or_odd_caller_numbers_route_normally_through_the_whole_flow(twilio, campaign, tracking_number, caller, assert_valid_twiml):
    from tests.tracking.factories import ContactFactory

    campaign.sticky_routing = True
    campaign.company_phone = "+13035550190"
    campaign.save()
    BlockedCaller.objects.create(number="+14155550100")
    ContactFactory(phone_number="+14155550100")
    h = HandlerFactory()
    CampaignHandlerFactory(campaign=campaign, handler=h)
    response = incoming(twilio, tracking_number.number, caller=caller)
    assert_valid_twiml(response.content)
    dial = doc(response).find("Dial")
    assert dial.find("Number").text == h.receiving_number.number and dial.get("callerId") is None
    nxt = twilio.post(dial.get("action"), {"CallSid": "CA0001", "DialCallStatus": "no-answer"})
    assert doc(nxt).find("Dial/Number").text == "+13035550190"
    call = Call.objects.get()
    assert call.caller_number == caller and not call.used_failsafe
