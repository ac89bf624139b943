"""A line's no-answer routing to the campaign's queue or to a voice menu, played through the signed webhooks: the caller
waits in the queue (at most once a call) then goes on down the fallback chain; a menu's keys route as any sub-menu's do,
and no key goes on down the chain."""

from __future__ import annotations

import pytest
from django.urls import reverse
from lxml import etree

from calltrack.numbers.models import NoAnswerAction
from calltrack.numbers.providers import local
from routing.services.plan import queue_name
from tests.numbers.factories import ReceivingNumberFactory, TrackingNumberFactory
from tests.routing.test_voice_flow import Flow, dialled, handler
from tests.tracking.factories import CampaignFactory, HandlerFactory
from tracking.models import AttemptKind, Call, CallAttempt, CallEvent, IVRMenu, IVROption, QueuedCall
from tracking.timeline import call_route_story

pytestmark = pytest.mark.django_db
LOT = "+13035550177"


@pytest.fixture(autouse=True)
def _no_queue_dials():
    local.QUEUE_DIALS.clear()
    yield
    local.QUEUE_DIALS.clear()


@pytest.fixture
def campaign():
    # The queue's own switch ("queue callers when every handler is busy") is off: a line's no-answer setting uses the
    # campaign's queue all the same.
    return CampaignFactory(name="Roofing", company_phone="+13035550190", queue_enabled=False, queue_max_wait=120,
                           no_answer_message="We are closed.")


@pytest.fixture
def tn(campaign):
    return TrackingNumberFactory(campaign=campaign)


@pytest.fixture
def flow(twilio, tn):
    return Flow(twilio, tn)


@pytest.fixture
def play(flow, assert_valid_twiml):
    """Post to a URL of our TwiML as Twilio does; every answer must be valid TwiML."""
    def post(url, **params):
        response = flow.twilio.post(url, {"CallSid": flow.sid, **params})
        assert response.status_code == 200, response.content
        assert_valid_twiml(response.content)
        return etree.fromstring(response.content)
    return post


def events(kind=None):
    rows = CallEvent.objects.filter(call__call_sid="CA100")
    return [e.message for e in (rows.filter(kind=kind) if kind else rows)]


def story():
    return call_route_story(Call.objects.get(call_sid="CA100"))


# --- Queue -------------------------------------------------------------------------------------------------------


def test_a_line_set_to_queue_puts_the_caller_in_the_queue_when_it_rings_out(flow, campaign, assert_valid_twiml):
    desk = handler(campaign, name="Front desk", receiving_number=ReceivingNumberFactory(no_answer_action=NoAnswerAction.QUEUE))
    first = flow.start()
    assert dialled(first) == [desk.receiving_number.number]
    doc = flow.dial_result(first, "no-answer")
    assert_valid_twiml(etree.tostring(doc))
    enqueue = doc.find("Enqueue")
    assert enqueue.text == queue_name(campaign.pk)
    assert "/voice/queue-wait?call=" in enqueue.get("waitUrl") and "/voice/queue-result?call=" in enqueue.get("action")
    queued = QueuedCall.objects.get()
    assert (queued.call.call_sid, queued.left_at) == ("CA100", None)
    assert "no answer: the caller waits in the queue (at most 120 s)" in events("routing.queued")
    assert "Front desk did not answer" in story()[0] and story()[1] == "No answer: the caller waited in the queue"


def test_after_the_maximum_wait_the_caller_goes_down_the_fallback_chain_and_is_never_queued_again(flow, tn, campaign, play):
    """The tracking number's agent is also set to queue: the call was queued once, so its no-answer goes on down the chain."""
    handler(campaign, name="Front desk", receiving_number=ReceivingNumberFactory(no_answer_action=NoAnswerAction.QUEUE))
    agent = ReceivingNumberFactory(label="Number agent", no_answer_action=NoAnswerAction.QUEUE)
    tn.assigned_agent = agent
    tn.save()
    enqueue = flow.dial_result(flow.start(), "no-answer").find("Enqueue")
    held = play(enqueue.get("waitUrl"), QueuePosition="1", QueueTime="30")
    assert held.find("Say").text.startswith("All of our lines are busy")
    out = play(enqueue.get("waitUrl"), QueuePosition="1", QueueTime="120").find("Redirect")
    doc = play(out.text)
    assert dialled(doc) == [agent.number]
    assert "left the queue after 120 s (the maximum wait): on to the fallback chain" in events()
    doc = play(doc.find("Dial").get("action"), DialCallStatus="no-answer", DialCallDuration="0")
    assert dialled(doc) == ["+13035550190"]  # not the queue again: the company phone
    doc = play(doc.find("Dial").get("action"), DialCallStatus="no-answer", DialCallDuration="0")
    assert [(v.tag, v.text) for v in doc] == [("Say", "We are closed."), ("Hangup", None)]
    assert QueuedCall.objects.count() == 1 and len(events("routing.queued")) == 1
    kinds = list(CallAttempt.objects.order_by("sequence").values_list("kind", flat=True))
    assert kinds == [AttemptKind.HANDLER, AttemptKind.FALLBACK, AttemptKind.FALLBACK]
    assert story()[1] == "No answer: the caller waited in the queue for 120 s"
    # Twilio may also request the <Enqueue action> (QueueResult=redirected): the stored answer, nothing dialled again.
    play(enqueue.get("action"), QueueResult="redirected", QueueTime="120")
    assert CallAttempt.objects.count() == 3


def test_a_caller_queued_by_the_busy_queue_is_not_queued_again_by_a_line_set_to_queue(flow, campaign, play):
    """Every handler busy: the caller waits in the queue; leaving it, the chain's agent set to queue rings out and the
    call goes on without a second stay in the queue."""
    campaign.queue_enabled = True
    campaign.save()
    busy = handler(campaign, name="Busy desk", concurrency_cap=1)
    other = Flow(flow.twilio, flow.tn, sid="CA099")
    assert dialled(other.start()) == [busy.receiving_number.number]
    agent = ReceivingNumberFactory(label="Number agent", no_answer_action=NoAnswerAction.QUEUE)
    flow.tn.assigned_agent = agent
    flow.tn.save()
    enqueue = flow.start().find("Enqueue")
    doc = play(play(enqueue.get("waitUrl"), QueuePosition="1", QueueTime="120").find("Redirect").text)
    assert dialled(doc) == [agent.number]
    doc = play(doc.find("Dial").get("action"), DialCallStatus="no-answer", DialCallDuration="0")
    assert dialled(doc) == ["+13035550190"]
    assert QueuedCall.objects.filter(call__call_sid="CA100").count() == 1


def test_a_fallback_agent_set_to_queue_queues_the_caller_then_the_rest_of_the_chain_follows(flow, tn, campaign, play):
    handler(campaign, name="Front desk")
    agent = ReceivingNumberFactory(label="Number agent", no_answer_action=NoAnswerAction.QUEUE)
    tn.assigned_agent = agent
    tn.forwarding_number = "+13035550180"
    tn.save()
    doc = flow.dial_result(flow.start(), "no-answer")
    assert dialled(doc) == [agent.number]
    enqueue = play(doc.find("Dial").get("action"), DialCallStatus="no-answer", DialCallDuration="0").find("Enqueue")
    assert enqueue is not None
    result = play(enqueue.get("action"), QueueResult="leave", QueueTime="120")
    assert dialled(result) == ["+13035550180"]  # the chain goes on where it was: the forwarding number, then the company phone
    assert dialled(play(result.find("Dial").get("action"), DialCallStatus="no-answer", DialCallDuration="0")) == ["+13035550190"]
    assert [s for s in story() if "queue" in s] == ["No answer: the caller waited in the queue for 120 s"]
    assert story().index("No answer: the caller waited in the queue for 120 s") == 2  # after the agent's leg


def test_a_handler_freed_while_the_caller_waits_after_no_answer_is_offered_the_caller(flow, campaign, play, django_capture_on_commit_callbacks):
    busy = handler(campaign, name="Busy desk", concurrency_cap=1)
    handler(campaign, priority=2, name="Front desk", receiving_number=ReceivingNumberFactory(no_answer_action=NoAnswerAction.QUEUE))
    other = Flow(flow.twilio, flow.tn, sid="CA099")
    other_dial = other.start()
    assert dialled(other_dial) == [busy.receiving_number.number]
    doc = flow.start()  # Busy desk is at its cap: Front desk is dialled
    assert flow.dial_result(doc, "no-answer").find("Enqueue") is not None
    status_url = other_dial.find("Dial/Number").get("statusCallback")
    with django_capture_on_commit_callbacks(execute=True):
        play(status_url, CallStatus="in-progress")
        play(status_url, CallStatus="completed", CallDuration="60")
    [dial] = local.QUEUE_DIALS
    assert dial.to == busy.receiving_number.number and queue_name(campaign.pk) in dial.twiml
    offered = QueuedCall.objects.get(call__call_sid="CA100").offered
    assert offered is not None and offered.handler == busy and offered.kind == AttemptKind.QUEUE


# --- Menu --------------------------------------------------------------------------------------------------------


@pytest.fixture
def menu(campaign):
    """A sub-menu no key of the main menu opens (the campaign has no main menu): the no-answer menu."""
    m = IVRMenu.objects.create(campaign=campaign, name="Nobody free", prompt="Our lot 1, a message 2, Denver 3.", repeat=1)
    IVROption.objects.create(campaign=campaign, menu=m, digit="1", action="number", number=LOT, response="Transferring.")
    IVROption.objects.create(campaign=campaign, menu=m, digit="2", action="voicemail")
    return m


def menu_line(menu):
    return ReceivingNumberFactory(no_answer_action=NoAnswerAction.MENU, no_answer_menu=menu)


def test_a_line_set_to_a_menu_plays_it_when_it_rings_out_and_a_key_routes(flow, campaign, menu, play, assert_valid_twiml):
    desk = handler(campaign, name="Front desk", receiving_number=menu_line(menu))
    doc = flow.dial_result(flow.start(), "no-answer")
    assert_valid_twiml(etree.tostring(doc))
    assert [el.tag for el in doc] == ["Gather", "Redirect"]
    assert doc.find("Gather/Say").text == menu.prompt and f"menu={menu.pk}" in doc.find("Gather").get("action")
    assert "no answer: sub-menu 'Nobody free' played" in events("ivr.menu")
    lot = play(doc.find("Gather").get("action"), Digits="1")
    assert lot.find("Say").text == "Transferring." and dialled(lot) == [LOT]
    assert CallAttempt.objects.get(number_dialed=LOT).kind == AttemptKind.NUMBER
    assert Call.objects.get().tags["key_pressed"] == "1"
    assert story()[0].startswith(f"{desk.name} did not answer")
    assert story()[1] == "No answer: the caller heard the menu 'Nobody free'"


def test_a_menu_key_that_rings_out_hears_the_menu_again_and_can_leave_a_message(flow, campaign, menu, play):
    """The key's route is decided afresh: not answered, the line's no-answer menu is heard again (a new menu, counted)."""
    handler(campaign, name="Front desk", receiving_number=menu_line(menu))
    doc = flow.dial_result(flow.start(), "no-answer")
    lot = play(doc.find("Gather").get("action"), Digits="1")
    again = play(lot.find("Dial").get("action"), DialCallStatus="no-answer", DialCallDuration="0")
    assert again.find("Gather/Say").text == menu.prompt and "heard=2" in again.find("Gather").get("action")
    message = play(again.find("Gather").get("action"), Digits="2")
    assert [el.tag for el in message] == ["Say", "Record", "Hangup"]
    assert [s for s in story() if s.startswith("No answer")] == ["No answer: the caller heard the menu 'Nobody free'"] * 2


def test_no_key_in_the_no_answer_menu_goes_on_down_the_fallback_chain(flow, campaign, menu, play):
    handler(campaign, name="Front desk", receiving_number=menu_line(menu))
    doc = flow.dial_result(flow.start(), "no-answer")
    repeat = play(doc.find("Redirect").text)  # round 1 of 1 repeat: the menu again
    assert repeat.find("Gather/Say").text == menu.prompt
    doc = play(repeat.find("Redirect").text)
    assert dialled(doc) == ["+13035550190"]
    assert "no option chosen in the no-answer menu: on down the fallback chain" in events("ivr.no_choice")
    end = play(doc.find("Dial").get("action"), DialCallStatus="no-answer", DialCallDuration="0")
    assert [el.tag for el in end] == ["Say", "Hangup"]


def test_a_menu_key_to_a_handler_dials_them_and_their_own_no_answer_setting_follows(flow, campaign, menu, play):
    denver = HandlerFactory(name="Denver")  # outside the campaign: a key may name any handler
    IVROption.objects.create(campaign=campaign, menu=menu, digit="3", action="handler", handler=denver)
    handler(campaign, name="Front desk", receiving_number=menu_line(menu))
    doc = flow.dial_result(flow.start(), "no-answer")
    picked = play(doc.find("Gather").get("action"), Digits="3")
    assert dialled(picked) == [denver.receiving_number.number]
    nxt = play(picked.find("Dial").get("action"), DialCallStatus="no-answer", DialCallDuration="0")
    assert dialled(nxt) == ["+13035550190"]  # Denver's line hangs up after the chain: the company phone


def test_a_menu_of_another_campaign_is_not_played_the_line_goes_on_down_the_chain(flow, campaign):
    elsewhere = IVRMenu.objects.create(campaign=CampaignFactory(name="Other"), name="Elsewhere", prompt="Press 1.")
    IVROption.objects.create(campaign=elsewhere.campaign, menu=elsewhere, digit="1", action="voicemail")
    handler(campaign, name="Front desk", receiving_number=menu_line(elsewhere))
    assert dialled(flow.dial_result(flow.start(), "no-answer")) == ["+13035550190"]


def test_a_queue_dial_not_answered_then_the_maximum_wait_the_chain_is_answered_and_credited_right(flow, campaign, play,
                                                                                                  django_capture_on_commit_callbacks):
    """The queue dial's leg and the chain's next leg never share a dial sequence: the chain's answer is its own leg's."""
    busy = handler(campaign, name="Busy desk", concurrency_cap=1)
    handler(campaign, priority=2, name="Front desk", receiving_number=ReceivingNumberFactory(no_answer_action=NoAnswerAction.QUEUE))
    other_dial = Flow(flow.twilio, flow.tn, sid="CA099").start()
    enqueue = flow.dial_result(flow.start(), "no-answer").find("Enqueue")
    status_url = other_dial.find("Dial/Number").get("statusCallback")
    with django_capture_on_commit_callbacks(execute=True):
        play(status_url, CallStatus="in-progress")
        play(status_url, CallStatus="completed", CallDuration="60")
    [dial] = local.QUEUE_DIALS
    play(dial.status_url, CallSid=dial.sid, CallStatus="no-answer")  # the freed desk does not pick up
    doc = play(play(enqueue.get("waitUrl"), QueuePosition="1", QueueTime="120").find("Redirect").text)
    assert dialled(doc) == ["+13035550190"]
    play(doc.find("Dial").get("action"), DialCallStatus="completed", DialCallDuration="30")
    legs = {a.kind: a for a in CallAttempt.objects.filter(call__call_sid="CA100")}
    assert legs[AttemptKind.FALLBACK].status == "completed" and legs[AttemptKind.FALLBACK].duration == 30
    assert legs[AttemptKind.QUEUE].status == "no_answer" and legs[AttemptKind.QUEUE].handler == busy
    assert legs[AttemptKind.FALLBACK].sequence != legs[AttemptKind.QUEUE].sequence


def test_the_call_page_says_where_no_answer_took_the_caller(flow, campaign, menu, play, admin_client):
    handler(campaign, name="Front desk", receiving_number=menu_line(menu))
    doc = flow.dial_result(flow.start(), "no-answer")
    play(doc.find("Gather").get("action"), Digits="2")
    page = admin_client.get(reverse("admin:tracking_call_change", args=[Call.objects.get().pk])).content.decode()
    assert "No answer: the caller heard the menu &#x27;Nobody free&#x27;" in page
    assert "no answer: sub-menu &#x27;Nobody free&#x27; played" in page
