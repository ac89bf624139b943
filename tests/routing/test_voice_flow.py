"""Signed voice flows after the first answer: dial results, fallbacks, IVR, whisper, status callbacks."""

from __future__ import annotations

import pytest
from lxml import etree

from calltrack.numbers.models import NoAnswerAction
from tests.numbers.factories import ReceivingNumberFactory, TrackingNumberFactory
from tests.tracking.factories import CampaignFactory, CampaignHandlerFactory, ContactFactory, HandlerFactory, SourceFactory
from tracking.models import AttemptStatus, Call, CallAttempt, CallStatus, IVROption

pytestmark = pytest.mark.django_db
CALLER = "+14155550100"


def root(response):
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "text/xml"
    return etree.fromstring(response.content)


class Flow:
    def __init__(self, twilio, tracking_number, sid="CA100"):
        self.twilio, self.tn, self.sid = twilio, tracking_number, sid

    def start(self, **extra):
        return root(self.twilio.post("/voice/incoming", {"CallSid": self.sid, "From": CALLER, "To": self.tn.number, **extra}))

    def dial_result(self, doc, status="no-answer", duration="0"):
        action = doc.find("Dial").get("action")
        return root(self.twilio.post(action, {"CallSid": self.sid, "DialCallStatus": status, "DialCallDuration": duration}))

    def press(self, doc, digits=""):
        url = doc.find("Gather").get("action") if digits else doc.find("Redirect").text
        return root(self.twilio.post(url, {"CallSid": self.sid, **({"Digits": digits} if digits else {})}))

    def status(self, status, seq=None, duration="0"):
        params = {"CallSid": self.sid, "CallStatus": status, "CallDuration": duration}
        if seq is not None:
            params["SequenceNumber"] = str(seq)
        return root(self.twilio.post("/voice/status", params))


def dialled(doc):
    return [n.text for n in doc.findall("Dial/Number")]


@pytest.fixture
def campaign():
    return CampaignFactory(name="Roofing", company_phone="+13035550190")


@pytest.fixture
def tn(campaign):
    return TrackingNumberFactory(campaign=campaign, source=SourceFactory(name="Google Ads"))


@pytest.fixture
def flow(twilio, tn):
    return Flow(twilio, tn)


def handler(campaign, priority=1, **kwargs):
    h = HandlerFactory(priority=priority, **kwargs)
    CampaignHandlerFactory(campaign=campaign, handler=h)
    return h


def test_no_answer_goes_to_the_next_priority_and_releases_the_slot(flow, campaign, assert_valid_twiml):
    first, second = handler(campaign, 1, concurrency_cap=1), handler(campaign, 2)
    doc = flow.start()
    assert dialled(doc) == [first.receiving_number.number]
    nxt = flow.dial_result(doc, "no-answer")
    assert_valid_twiml(etree.tostring(nxt))
    assert dialled(nxt) == [second.receiving_number.number]
    a1, a2 = CallAttempt.objects.order_by("sequence")
    assert (a1.status, a1.holds_slot, a1.counted) == (AttemptStatus.NO_ANSWER, False, False)
    assert (a2.handler, a2.sequence, a2.holds_slot) == (second, 2, True)


def test_answered_dial_completes_the_attempt_and_hangs_up(flow, campaign, assert_valid_twiml):
    h = handler(campaign)
    doc = flow.start()
    end = flow.dial_result(doc, "completed", "125")
    assert_valid_twiml(etree.tostring(end))
    assert [el.tag for el in end] == ["Hangup"]
    attempt = CallAttempt.objects.get()
    assert (attempt.status, attempt.duration, attempt.holds_slot, attempt.counted) == (AttemptStatus.COMPLETED, 125, False, True)
    call = Call.objects.get()
    assert call.handler == h and call.answered_at is not None and call.talk_time == 125
    assert call.status == CallStatus.IN_PROGRESS
    assert "call.answered" in set(call.events.values_list("kind", flat=True))


def test_a_retried_dial_result_returns_the_same_answer_and_dials_nobody_new(flow, campaign):
    handler(campaign, 1), handler(campaign, 2), handler(campaign, 3)
    doc = flow.start()
    first = flow.dial_result(doc, "busy")
    again = flow.dial_result(doc, "busy")
    assert etree.tostring(first) == etree.tostring(again)
    assert CallAttempt.objects.count() == 2


def test_caller_hanging_up_while_it_rings_dials_nobody_else(flow, campaign):
    handler(campaign, 1), handler(campaign, 2)
    doc = flow.start()
    assert [el.tag for el in flow.dial_result(doc, "canceled")] == ["Hangup"]
    assert CallAttempt.objects.get().status == AttemptStatus.CANCELED


def test_exhausted_plan_forwards_to_the_last_numbers_no_answer_forward_then_the_fallback_chain(flow, campaign, tn, assert_valid_twiml):
    forward_to = ReceivingNumberFactory(label="Overflow")
    rn = ReceivingNumberFactory(no_answer_action=NoAnswerAction.FORWARD, no_answer_forward_to=forward_to)
    handler(campaign, receiving_number=rn)
    agent = ReceivingNumberFactory(label="Number agent")
    caller_agent = ReceivingNumberFactory(label="Caller agent")
    tn.assigned_agent = agent
    tn.forwarding_number = "+13035550180"
    tn.save()
    ContactFactory(phone_number=CALLER, assigned_agent=caller_agent)
    doc = flow.start()
    seen = [dialled(doc)[0]]
    for _ in range(8):
        doc = flow.dial_result(doc, "no-answer")
        assert_valid_twiml(etree.tostring(doc))
        if doc.find("Dial") is None:
            break
        seen.append(dialled(doc)[0])
    assert seen == [rn.number, forward_to.number, agent.number, caller_agent.number, "+13035550180", "+13035550190"]
    assert [el.tag for el in doc] == ["Say", "Hangup"]
    kinds = list(CallAttempt.objects.order_by("sequence").values_list("kind", flat=True))
    assert kinds == ["handler", "no_answer_forward", "fallback", "fallback", "fallback", "fallback"]
    assert Call.objects.get().fallback_step == "company_phone"


def test_voicemail_when_the_last_number_takes_messages(flow, campaign, twilio, assert_valid_twiml):
    rn = ReceivingNumberFactory(no_answer_action=NoAnswerAction.VOICEMAIL, no_answer_message="Leave us a message.")
    handler(campaign, receiving_number=rn)
    doc = flow.dial_result(flow.start(), "no-answer")
    assert_valid_twiml(etree.tostring(doc))
    assert [el.tag for el in doc] == ["Say", "Record", "Hangup"]
    assert doc.find("Say").text == "Leave us a message."
    done = root(twilio.post(doc.find("Record").get("action"), {"CallSid": flow.sid, "RecordingUrl": "https://api.twilio.com/rec/RE1"}))
    assert [el.tag for el in done] == ["Hangup"]
    assert Call.objects.get().voicemail_url == "https://api.twilio.com/rec/RE1"


def test_no_handler_open_goes_straight_to_the_fallback_chain(flow, campaign):
    handler(campaign, always_open=False, business_hours={"mon": ["00:00-00:01"]}, timezone="Pacific/Kiritimati")
    doc = flow.start()
    assert dialled(doc) == ["+13035550190"]
    call = Call.objects.get()
    assert call.decision["skipped"][0]["reason"] == "closed"


def test_nothing_left_says_the_campaign_message_and_hangs_up(flow, campaign, assert_valid_twiml):
    campaign.company_phone = ""
    campaign.no_answer_message = "We are closed."
    campaign.save()
    doc = flow.start()
    assert_valid_twiml(etree.tostring(doc))
    assert [el.tag for el in doc] == ["Say", "Hangup"] and doc.find("Say").text == "We are closed."


def test_simultaneous_rings_up_to_ten_in_one_dial_and_the_answerer_wins(flow, campaign, twilio, assert_valid_twiml):
    campaign.routing_strategy = "simultaneous"
    campaign.save()
    handlers = [handler(campaign) for _ in range(12)]
    doc = flow.start()
    assert_valid_twiml(etree.tostring(doc))
    assert len(doc.findall("Dial")) == 1 and len(dialled(doc)) == 10
    third = doc.findall("Dial/Number")[2]
    root(twilio.post(third.get("statusCallback"), {"CallSid": "CAchild", "CallStatus": "in-progress"}))
    flow.dial_result(doc, "completed", "30")
    call = Call.objects.get()
    winner = CallAttempt.objects.get(status=AttemptStatus.COMPLETED)
    assert winner.number_dialed == third.text and call.handler_id == winner.handler_id
    assert CallAttempt.objects.filter(status=AttemptStatus.CANCELED).count() == 9
    assert not CallAttempt.objects.filter(holds_slot=True).exists()
    assert {h.id for h in handlers} >= set(CallAttempt.objects.values_list("handler_id", flat=True))


def test_whisper_announces_campaign_source_and_callers_place(flow, campaign, twilio, assert_valid_twiml):
    handler(campaign)
    doc = flow.start()
    response = twilio.post(doc.find("Dial/Number").get("url"), {"CallSid": "CAchild"})
    assert_valid_twiml(response.content)
    say = root(response).find("Say")
    assert say.text == "Call from Roofing, source Google Ads, caller in San Francisco, CA."
    assert CallAttempt.objects.get().status == AttemptStatus.ANSWERED
    assert Call.objects.get().answered_at is not None


def test_whisper_template_of_the_tracking_number_wins(flow, campaign, tn, twilio):
    tn.whisper_message = "{source} lead from {state}"
    tn.save()
    handler(campaign)
    doc = flow.start()
    assert root(twilio.post(doc.find("Dial/Number").get("url"), {"CallSid": "CAc"})).find("Say").text == "Google Ads lead from CA"


def test_skip_whisper_connects_silently(flow, campaign, twilio):
    handler(campaign, receiving_number=ReceivingNumberFactory(skip_whisper=True))
    doc = flow.start()
    assert len(root(twilio.post(doc.find("Dial/Number").get("url"), {"CallSid": "CAc"}))) == 0


def test_ivr_key_sets_a_tag_that_handlers_match(flow, campaign, assert_valid_twiml):
    campaign.ivr_prompt = "Sales 1, support 2."
    campaign.save()
    IVROption.objects.create(campaign=campaign, digit="1", tag_key="department", tag_value="sales")
    IVROption.objects.create(campaign=campaign, digit="2", tag_key="department", tag_value="support")
    handler(campaign, tag_criteria=[{"key": "department", "op": "equals", "value": "sales"}])
    support = handler(campaign, tag_criteria=[{"key": "department", "op": "equals", "value": "support"}])
    doc = flow.press(flow.start(), "2")
    assert_valid_twiml(etree.tostring(doc))
    assert dialled(doc) == [support.receiving_number.number]
    call = Call.objects.get()
    assert call.tags["department"] == "support" and call.tags["key_pressed"] == "2"
    assert call.decision["skipped"][0]["reason"] == "tag_mismatch"


def test_ivr_key_straight_to_a_handler(flow, campaign):
    campaign.ivr_prompt = "Press 9 for the manager."
    campaign.save()
    handler(campaign, 1)
    manager = handler(campaign, 5)
    IVROption.objects.create(campaign=campaign, digit="9", action="handler", handler=manager)
    assert dialled(flow.press(flow.start(), "9")) == [manager.receiving_number.number]


def test_ivr_key_to_a_handler_outside_the_campaign(flow, campaign):
    campaign.ivr_prompt = "Press 0 for the operator."
    campaign.save()
    handler(campaign)
    operator = HandlerFactory(name="Operator")
    IVROption.objects.create(campaign=campaign, digit="0", action="handler", handler=operator)
    assert dialled(flow.press(flow.start(), "0")) == [operator.receiving_number.number]


def test_ivr_no_input_repeats_then_takes_the_default(flow, campaign, assert_valid_twiml):
    campaign.ivr_prompt = "Press 1."
    campaign.ivr_repeat = 1
    campaign.ivr_default_digit = "1"
    campaign.save()
    IVROption.objects.create(campaign=campaign, digit="1", tag_key="lang", tag_value="en")
    h = handler(campaign)
    again = flow.press(flow.start())
    assert_valid_twiml(etree.tostring(again))
    assert again.find("Gather") is not None
    doc = flow.press(again)
    assert dialled(doc) == [h.receiving_number.number]
    assert Call.objects.get().tags["lang"] == "en"


def test_final_status_releases_slots_and_announces_completion_once(flow, campaign):
    handler(campaign, concurrency_cap=2)
    flow.start()
    flow.status("completed", seq=3, duration="40")
    flow.status("completed", seq=3, duration="40")
    call = Call.objects.get()
    assert call.status == CallStatus.COMPLETED and call.duration == 40 and call.last_sequence == 3
    attempt = CallAttempt.objects.get()
    assert not attempt.holds_slot and attempt.status == AttemptStatus.CANCELED and not attempt.counted
    assert list(call.events.values_list("kind", flat=True)).count("call.completed") == 1


def test_late_or_out_of_order_status_never_moves_a_call_back(flow, campaign):
    handler(campaign)
    flow.start()
    flow.status("in-progress", seq=1)
    flow.status("completed", seq=3, duration="12")
    flow.status("in-progress", seq=2)
    flow.status("ringing", seq=0)
    call = Call.objects.get()
    assert (call.status, call.duration, call.last_sequence) == (CallStatus.COMPLETED, 12, 3)


def test_older_sequence_number_is_ignored(flow, campaign):
    handler(campaign)
    flow.start()
    flow.status("in-progress", seq=5)
    flow.status("ringing", seq=4)
    assert Call.objects.get().status == CallStatus.IN_PROGRESS


def test_sticky_routing_sends_a_repeat_caller_to_who_answered_them(twilio, campaign, tn):
    campaign.sticky_routing = True
    campaign.save()
    handler(campaign, 1)
    last_time = handler(campaign, 2)
    first = Flow(twilio, tn, sid="CAold")
    doc = first.start()
    doc = first.dial_result(doc, "no-answer")
    assert dialled(doc) == [last_time.receiving_number.number]
    first.dial_result(doc, "completed", "60")
    second = Flow(twilio, tn, sid="CAnew")
    assert dialled(second.start()) == [last_time.receiving_number.number]
    assert Call.objects.get(call_sid="CAnew").decision["sticky_handler"] == last_time.id


def test_anonymous_callers_are_never_sticky(twilio, campaign, tn):
    campaign.sticky_routing = True
    campaign.save()
    first = handler(campaign, 1)
    second = handler(campaign, 2)
    old = Flow(twilio, tn, sid="CAanon1")
    params = {"CallSid": "CAanon1", "From": "anonymous", "To": tn.number}
    doc = root(twilio.post("/voice/incoming", params))
    doc = old.dial_result(doc, "no-answer")
    old.dial_result(doc, "completed", "10")
    assert Call.objects.get(call_sid="CAanon1").handler == second
    doc = root(twilio.post("/voice/incoming", {**params, "CallSid": "CAanon2"}))
    assert dialled(doc) == [first.receiving_number.number]
    assert doc.find("Dial").get("callerId") is None


def test_round_robin_spreads_calls_evenly_with_state_in_the_database(twilio, campaign, tn):
    campaign.routing_strategy = "round_robin"
    campaign.save()
    handlers = [handler(campaign) for _ in range(3)]
    got = []
    for n in range(6):
        doc = Flow(twilio, tn, sid=f"CArr{n}").start()
        got.append(dialled(doc)[0])
    numbers = [h.receiving_number.number for h in handlers]
    assert sorted(got) == sorted(numbers * 2)
    assert got[:3] == got[3:]
    campaign.refresh_from_db()
    assert campaign.rr_position == 6


def test_least_connected_picks_the_handler_with_fewest_calls_in_progress(twilio, campaign, tn):
    campaign.routing_strategy = "least_connected"
    campaign.save()
    busy, idle = handler(campaign), handler(campaign)
    Flow(twilio, tn, sid="CAa").start()  # goes to one of them (ties by list order: busy first)
    doc = Flow(twilio, tn, sid="CAb").start()
    assert dialled(doc) == [idle.receiving_number.number]
    assert CallAttempt.objects.get(call__call_sid="CAa").handler == busy


def test_concurrency_cap_sends_the_next_call_elsewhere_until_the_slot_is_released(twilio, campaign, tn):
    capped = handler(campaign, 1, concurrency_cap=1)
    spare = handler(campaign, 2)
    one = Flow(twilio, tn, sid="CAc1")
    doc1 = one.start()
    assert dialled(doc1) == [capped.receiving_number.number]
    assert dialled(Flow(twilio, tn, sid="CAc2").start()) == [spare.receiving_number.number]
    one.dial_result(doc1, "no-answer")  # frees the slot
    assert dialled(Flow(twilio, tn, sid="CAc3").start()) == [capped.receiving_number.number]
    skipped = Call.objects.get(call_sid="CAc2").decision["skipped"]
    assert skipped[0]["reason"] == "capped" and "concurrency cap 1" in skipped[0]["detail"]


def test_hourly_cap_counts_answered_calls_only(twilio, campaign, tn):
    capped = handler(campaign, 1, hourly_cap=1)
    handler(campaign, 2)
    a = Flow(twilio, tn, sid="CAh1")
    a.dial_result(a.start(), "no-answer")  # not answered: not counted
    b = Flow(twilio, tn, sid="CAh2")
    doc = b.start()
    assert dialled(doc) == [capped.receiving_number.number]
    b.dial_result(doc, "completed", "20")
    doc = Flow(twilio, tn, sid="CAh3").start()
    assert dialled(doc) != [capped.receiving_number.number]


def test_stale_slot_stops_counting_after_its_expiry(twilio, campaign, tn, time_machine):
    import datetime as dt

    time_machine.move_to(dt.datetime(2026, 1, 5, 15, 0, tzinfo=dt.UTC), tick=False)
    capped = handler(campaign, 1, concurrency_cap=1, ring_timeout=30)
    handler(campaign, 2)
    Flow(twilio, tn, sid="CAs1").start()  # its callbacks never come
    assert dialled(Flow(twilio, tn, sid="CAs2").start()) != [capped.receiving_number.number]
    time_machine.move_to(dt.datetime(2026, 1, 5, 15, 1, 31, tzinfo=dt.UTC), tick=False)  # 30 s ring + 60 s margin
    assert dialled(Flow(twilio, tn, sid="CAs3").start()) == [capped.receiving_number.number]
    from routing.services import attempt_slots_release_stale

    assert attempt_slots_release_stale() == 2  # CAs1's and CAs2's: their rings ended long ago
    assert list(CallAttempt.objects.filter(holds_slot=True).values_list("call__call_sid", flat=True)) == ["CAs3"]


def test_leg_status_callbacks_release_the_slot_whichever_comes_first(flow, campaign, twilio):
    handler(campaign, concurrency_cap=1)
    doc = flow.start()
    callback = doc.find("Dial/Number").get("statusCallback")
    root(twilio.post(callback, {"CallSid": "CAleg", "CallStatus": "in-progress"}))
    attempt = CallAttempt.objects.get()
    assert attempt.status == AttemptStatus.ANSWERED and attempt.holds_slot
    assert attempt.slot_expires_at > attempt.started_at + __import__("datetime").timedelta(hours=4)  # lasts the call
    root(twilio.post(callback, {"CallSid": "CAleg", "CallStatus": "completed", "CallDuration": "33"}))
    attempt.refresh_from_db()
    assert (attempt.status, attempt.holds_slot, attempt.counted, attempt.duration) == (AttemptStatus.COMPLETED, False, True, 33)
    flow.dial_result(doc, "completed", "33")  # the dial result afterwards changes nothing more
    attempt.refresh_from_db()
    assert (attempt.status, attempt.holds_slot, attempt.counted) == (AttemptStatus.COMPLETED, False, True)


def test_unanswered_leg_callback_uncounts_the_attempt(flow, campaign, twilio):
    handler(campaign, hourly_cap=1)
    doc = flow.start()
    root(twilio.post(doc.find("Dial/Number").get("statusCallback"), {"CallSid": "CAleg", "CallStatus": "busy"}))
    attempt = CallAttempt.objects.get()
    assert (attempt.status, attempt.holds_slot, attempt.counted) == (AttemptStatus.BUSY, False, False)
