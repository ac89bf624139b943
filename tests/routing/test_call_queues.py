"""Call queues played through the signed webhooks: every handler busy, the caller waits (<Enqueue>), leaves after the
maximum wait down the fallback chain, or is taken by a handler whose line frees up (<Dial><Queue> via the carrier)."""

from __future__ import annotations

import pytest
from lxml import etree

from calltrack.numbers.providers import local
from routing.services.plan import queue_name
from tests.numbers.factories import TrackingNumberFactory
from tests.tracking.factories import CampaignFactory, CampaignHandlerFactory, HandlerFactory, SourceFactory
from tracking.models import AttemptKind, AttemptStatus, Call, CallAttempt, CallEvent, QueuedCall

pytestmark = pytest.mark.django_db
MUSIC = "https://music.example.com/hold.mp3"


def root(response, assert_valid_twiml):
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "text/xml"
    assert_valid_twiml(response.content)
    return etree.fromstring(response.content)


@pytest.fixture(autouse=True)
def _no_queue_dials():
    local.QUEUE_DIALS.clear()
    yield
    local.QUEUE_DIALS.clear()


@pytest.fixture
def campaign():
    return CampaignFactory(name="Roofing", company_phone="+13035550190", queue_enabled=True, queue_max_wait=120,
                           queue_hold_music_url=MUSIC)


@pytest.fixture
def tn(campaign):
    return TrackingNumberFactory(campaign=campaign, source=SourceFactory(name="Google Ads"))


@pytest.fixture
def desk(campaign):
    """One handler who takes one call at a time."""
    h = HandlerFactory(name="Front desk", concurrency_cap=1)
    CampaignHandlerFactory(campaign=campaign, handler=h)
    return h


@pytest.fixture
def play(twilio, tn, assert_valid_twiml):
    def post(url, params):
        return root(twilio.post(url, params), assert_valid_twiml)

    def start(sid):
        return post("/voice/incoming", {"CallSid": sid, "From": "+14155550100", "To": tn.number})

    post.start = start
    return post


def bridge_url(dial) -> str:
    """The <Queue url> of a queue dial: what Twilio requests for the caller it dequeues to that line."""
    return etree.fromstring(dial.twiml.encode()).find("Dial/Queue").get("url")


def events(sid):
    return [e.message for e in CallEvent.objects.filter(call__call_sid=sid)]


def test_a_caller_waits_in_the_queue_when_every_handler_is_busy(play, desk, campaign):
    first = play.start("CA1")
    assert [n.text for n in first.findall("Dial/Number")] == [desk.receiving_number.number]
    doc = play.start("CA2")
    enqueue = doc.find("Enqueue")
    assert enqueue.text == queue_name(campaign.pk)
    assert "/voice/queue-wait?call=" in enqueue.get("waitUrl") and "/voice/queue-result?call=" in enqueue.get("action")
    queued = QueuedCall.objects.get()
    assert (queued.call.call_sid, queued.campaign, queued.left_at) == ("CA2", campaign, None)
    assert "queued: every handler busy (Front desk)" in events("CA2")


def test_the_wait_url_says_the_position_and_plays_the_hold_music(play, desk):
    play.start("CA1")
    wait = play.start("CA2").find("Enqueue").get("waitUrl")
    doc = play(wait, {"CallSid": "CA2", "QueuePosition": "3", "QueueTime": "30", "AvgQueueTime": "20", "CurrentQueueSize": "3"})
    assert doc.find("Say").text == "All of our lines are busy. Please hold, you are caller number 3."
    assert doc.find("Play").text == MUSIC


def test_without_hold_music_the_wait_is_the_message_and_a_pause(play, desk, campaign):
    campaign.queue_hold_music_url = ""
    campaign.queue_message = "Please hold."
    campaign.save()
    play.start("CA1")
    wait = play.start("CA2").find("Enqueue").get("waitUrl")
    doc = play(wait, {"CallSid": "CA2", "QueuePosition": "1", "QueueTime": "0"})
    assert [(v.tag, v.text) for v in doc] == [("Say", "Please hold."), ("Pause", None)]


def test_after_the_maximum_wait_the_caller_leaves_and_continues_down_the_fallback_chain(play, desk):
    play.start("CA1")
    enqueue = play.start("CA2").find("Enqueue")
    out = play(enqueue.get("waitUrl"), {"CallSid": "CA2", "QueuePosition": "1", "QueueTime": "120"}).find("Redirect")
    doc = play(out.text, {"CallSid": "CA2"})
    assert [n.text for n in doc.findall("Dial/Number")] == ["+13035550190"]  # the company phone, the fallback chain's end
    queued = QueuedCall.objects.get()
    assert queued.left_at is not None and queued.result == "leave"
    assert "left the queue after 120 s (the maximum wait): on to the fallback chain" in events("CA2")
    # Twilio may also request the <Enqueue action> (QueueResult=redirected): the same answer, nothing dialled twice.
    again = play(enqueue.get("action"), {"CallSid": "CA2", "QueueResult": "redirected", "QueueTime": "120"})
    assert etree.tostring(again) == etree.tostring(doc)
    assert CallAttempt.objects.filter(call__call_sid="CA2").count() == 1


def _queue_dial_after_first_call_ends(play, django_capture_on_commit_callbacks):
    play.start("CA1")
    play.start("CA2")
    leg = CallAttempt.objects.get(call__call_sid="CA1")
    with django_capture_on_commit_callbacks(execute=True):
        play(f"/voice/attempt-status?attempt={leg.pk}", {"CallSid": "CA9", "CallStatus": "completed", "CallDuration": "60"})
    [dial] = local.QUEUE_DIALS
    return leg, dial


def test_a_freed_handler_line_takes_the_next_caller_with_a_queue_dial(play, desk, campaign, django_capture_on_commit_callbacks, assert_valid_twiml):
    play.start("CA1")
    play.start("CA2")
    leg = CallAttempt.objects.get(call__call_sid="CA1")
    play(f"/voice/attempt-status?attempt={leg.pk}", {"CallSid": "CA9", "CallStatus": "in-progress"})
    assert local.QUEUE_DIALS == []  # still talking: nobody is taken from the queue
    with django_capture_on_commit_callbacks(execute=True):
        play(f"/voice/attempt-status?attempt={leg.pk}", {"CallSid": "CA9", "CallStatus": "completed", "CallDuration": "60"})
    [dial] = local.QUEUE_DIALS
    assert_valid_twiml(dial.twiml)
    assert etree.fromstring(dial.twiml.encode()).find("Dial/Queue").text == queue_name(campaign.pk)
    assert (dial.to, dial.caller_id) == (desk.receiving_number.number, Call.objects.get(call_sid="CA2").called_number)
    offer = CallAttempt.objects.get(call__call_sid="CA2")
    assert (offer.kind, offer.handler, offer.holds_slot) == (AttemptKind.QUEUE, desk, True)
    assert QueuedCall.objects.get().offered == offer
    # The handler answers the queue dial: Twilio dequeues the waiting caller and requests the <Queue url> for them.
    play(dial.status_url, {"CallSid": dial.sid, "CallStatus": "in-progress"})
    assert Call.objects.get(call_sid="CA2").answered_at is None  # the line answered; who it takes is not known yet
    bridged = play(bridge_url(dial), {"CallSid": "CA2", "QueueSid": "QU" + "0" * 32, "DequeingCallSid": dial.sid, "QueueTime": "45"})
    assert len(bridged) == 0  # nothing is said to the caller before they are connected
    call = Call.objects.get(call_sid="CA2")
    assert call.handler == desk and call.answered_at is not None
    assert QueuedCall.objects.get().result == "bridged"
    doc = play(f"/voice/queue-result?call={call.pk}", {"CallSid": "CA2", "QueueResult": "bridged", "QueueTime": "45"})
    assert doc.find("Hangup") is not None
    assert "taken from the queue after 45 s" in events("CA2")


def test_the_freed_handler_hears_the_whisper_before_taking_the_caller(play, desk, campaign, django_capture_on_commit_callbacks, assert_valid_twiml):
    campaign.greeting_voice = "man"
    campaign.save()
    leg, dial = _queue_dial_after_first_call_ends(play, django_capture_on_commit_callbacks)
    assert_valid_twiml(dial.twiml)
    doc = etree.fromstring(dial.twiml.encode())
    # What a dialled leg's <Number url> says (the same caller and tracking number), then the queue.
    whispered = play(f"/voice/whisper?attempt={leg.pk}", {"CallSid": "CA9"}).find("Say")
    assert [v.tag for v in doc] == ["Say", "Dial"] and doc.find("Dial/Queue").text == queue_name(campaign.pk)
    assert (doc.find("Say").text, doc.find("Say").get("voice")) == (whispered.text, "man")
    assert doc.find("Say").text.startswith("Call from Roofing, source Google Ads")


def test_a_line_that_skips_the_whisper_takes_the_caller_without_one(play, desk, django_capture_on_commit_callbacks):
    desk.receiving_number.skip_whisper = True
    desk.receiving_number.save()
    _, dial = _queue_dial_after_first_call_ends(play, django_capture_on_commit_callbacks)
    assert [v.tag for v in etree.fromstring(dial.twiml.encode())] == ["Dial"]


def test_an_unanswered_queue_dial_frees_the_caller_for_the_next_handler(play, desk, django_capture_on_commit_callbacks):
    _, dial = _queue_dial_after_first_call_ends(play, django_capture_on_commit_callbacks)
    play(dial.status_url, {"CallSid": dial.sid, "CallStatus": "no-answer"})
    offer = CallAttempt.objects.get(call__call_sid="CA2")
    assert (offer.status, offer.holds_slot) == (AttemptStatus.NO_ANSWER, False)
    assert QueuedCall.objects.get().offered is None


def test_a_caller_who_left_the_queue_is_not_offered_to_a_freed_handler(play, desk, django_capture_on_commit_callbacks):
    play.start("CA1")
    action = play.start("CA2").find("Enqueue").get("action")
    play(action, {"CallSid": "CA2", "QueueResult": "hangup", "QueueTime": "12"})
    assert "the caller hung up after 12 s in the queue" in events("CA2")
    leg = CallAttempt.objects.get(call__call_sid="CA1")
    with django_capture_on_commit_callbacks(execute=True):
        play(f"/voice/attempt-status?attempt={leg.pk}", {"CallSid": "CA9", "CallStatus": "completed", "CallDuration": "60"})
    assert local.QUEUE_DIALS == []


def test_without_queueing_a_busy_campaign_goes_straight_to_the_fallback_chain(play, desk, campaign):
    campaign.queue_enabled = False
    campaign.save()
    play.start("CA1")
    doc = play.start("CA2")
    assert doc.find("Enqueue") is None
    assert [n.text for n in doc.findall("Dial/Number")] == ["+13035550190"]
    assert not QueuedCall.objects.exists()


def test_handlers_that_are_closed_rather_than_busy_are_not_waited_for(play, campaign):
    h = HandlerFactory(name="Night desk", enabled=False)
    CampaignHandlerFactory(campaign=campaign, handler=h)
    doc = play.start("CA1")
    assert doc.find("Enqueue") is None
    assert [n.text for n in doc.findall("Dial/Number")] == ["+13035550190"]


@pytest.mark.parametrize("result", ["", "nope", "LEAVE", "x" * 500])
def test_an_unknown_queue_result_dials_the_failsafe_instead_of_failing(play, desk, settings, result):
    settings.CALLTRACK_FAILSAFE_NUMBER = "+13035550199"
    play.start("CA1")
    action = play.start("CA2").find("Enqueue").get("action")
    doc = play(action, {"CallSid": "CA2", "QueueResult": result, "QueueTime": "9999999999999"})
    assert [n.text for n in doc.findall("Dial/Number")] == ["+13035550199"]


def test_odd_queue_numbers_from_twilio_are_read_as_zero(play, desk):
    play.start("CA1")
    wait = play.start("CA2").find("Enqueue").get("waitUrl")
    doc = play(wait, {"CallSid": "CA2", "QueuePosition": "-1", "QueueTime": "１２"})
    assert "caller number 1" in doc.find("Say").text


def test_the_twilio_carrier_places_the_queue_dial_as_an_outbound_call_with_its_twiml(assert_valid_twiml):
    from tests.numbers.test_twilio_carrier import API, carrier

    twilio, fake = carrier((201, {"sid": "CA" + "b" * 32, "status": "queued"}))
    body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Dial><Queue>calltrack-campaign-7</Queue></Dial></Response>"
    sid = twilio.queue_dial(to="+13035550111", caller_id="+13035550123", twiml=body,
                            status_url="https://calls.example.com/voice/attempt-status?attempt=9", timeout=20)
    assert sid == "CA" + "b" * 32
    [request] = fake.requests
    assert (request["method"], request["uri"]) == ("POST", f"{API}/Calls.json")
    assert request["data"]["To"] == "+13035550111" and request["data"]["From"] == "+13035550123"
    assert request["data"]["Twiml"] == body and request["data"]["Timeout"] == 20
    assert request["data"]["StatusCallback"] == "https://calls.example.com/voice/attempt-status?attempt=9"
    assert request["data"]["StatusCallbackEvent"] == ["answered", "completed"]
    assert_valid_twiml(body)


def test_a_carrier_that_refuses_the_queue_dial_frees_the_slot_and_the_caller(play, desk, monkeypatch, django_capture_on_commit_callbacks):
    from calltrack.numbers.providers import CarrierError

    def refuse(self, **kwargs):
        raise CarrierError("Twilio is down", code="failed")

    monkeypatch.setattr(local.LocalCarrier, "queue_dial", refuse)
    play.start("CA1")
    play.start("CA2")
    leg = CallAttempt.objects.get(call__call_sid="CA1")
    with django_capture_on_commit_callbacks(execute=True):
        play(f"/voice/attempt-status?attempt={leg.pk}", {"CallSid": "CA9", "CallStatus": "completed", "CallDuration": "60"})
    offer = CallAttempt.objects.get(call__call_sid="CA2")
    assert (offer.status, offer.holds_slot, offer.counted) == (AttemptStatus.FAILED, False, False)
    assert QueuedCall.objects.get().offered is None


def test_the_api_reads_and_writes_a_campaigns_queue_settings(db):
    from tests.api.conftest import UserFactory, grant, token_client

    user = UserFactory(username="staff", is_staff=True)
    grant(user, "all")
    staff = token_client(user)
    campaign = CampaignFactory()
    url = f"/api/v1/campaigns/{campaign.pk}/"
    body = {"queue_enabled": True, "queue_max_wait": 300, "queue_hold_music_url": MUSIC, "queue_message": "Hold on, you are number {position}."}
    response = staff.patch(url, body, format="json")
    assert response.status_code == 200, response.content
    assert {k: response.json()[k] for k in body} == body
    campaign.refresh_from_db()
    assert (campaign.queue_enabled, campaign.queue_max_wait) == (True, 300)
    assert staff.patch(url, {"queue_max_wait": 5}, format="json").status_code == 400
    assert staff.patch(url, {"queue_max_wait": 10**30}, format="json").status_code == 400
    assert staff.patch(url, {"queue_hold_music_url": "not a url"}, format="json").status_code == 400


def test_the_call_page_explains_the_queue(admin_client, play, desk):
    from django.urls import reverse

    play.start("CA1")
    enqueue = play.start("CA2").find("Enqueue")
    out = play(enqueue.get("waitUrl"), {"CallSid": "CA2", "QueuePosition": "1", "QueueTime": "120"}).find("Redirect")
    play(out.text, {"CallSid": "CA2"})
    page = admin_client.get(reverse("admin:tracking_call_change", args=[Call.objects.get(call_sid="CA2").pk])).content.decode()
    assert "queued: every handler busy" in page and "left the queue after 120 s" in page


def test_the_campaign_admin_shows_the_queue_settings_with_their_help(admin_client, campaign):
    from django.urls import reverse

    page = admin_client.get(reverse("admin:tracking_campaign_change", args=[campaign.pk])).content.decode()
    assert "Call queue" in page and "Maximum wait (seconds)" in page and "Hold music URL" in page
    assert "After this long in the queue the caller leaves it" in page


def _simulate(*args: str) -> str:
    from io import StringIO

    from django.core.management import call_command

    out = StringIO()
    call_command("simulate_call", *args, stdout=out)
    return out.getvalue()


def test_simulate_call_waits_in_the_queue_until_the_maximum_wait_then_the_fallback(play, desk, tn, assert_valid_twiml):
    play.start("CA1")  # the desk is on a call
    out = _simulate("--to", tn.number, "--from", "+14155550111", "--answer", "none")
    assert "caller waits in queue" in out and "caller hears: All of our lines are busy. Please hold, you are caller number 1." in out
    assert "left the queue after 120 s (the maximum wait)" in out and "ringing +13035550190" in out
    call = Call.objects.exclude(call_sid="CA1").get()
    assert QueuedCall.objects.get(call=call).result == "leave"


@pytest.mark.django_db(transaction=True)  # each webhook commits: the queue dial is placed on commit, mid-simulation
def test_simulate_call_frees_the_busy_handler_whose_line_takes_the_caller(play, desk, tn):
    play.start("CA1")
    out = _simulate("--to", tn.number, "--from", "+14155550111", "--free-after", "30", "--duration", "50")
    assert "Front desk's call ends" in out and "<Dial><Queue method=\"POST\" url=" in out and "taken from the queue after 30 s" in out
    assert "taken from the queue by Front desk after 30 s" in out
    call = Call.objects.exclude(call_sid="CA1").get()
    assert call.handler == desk and call.answered_at is not None
    offer = call.attempts.get()
    assert (offer.kind, offer.status, offer.duration, offer.holds_slot) == (AttemptKind.QUEUE, AttemptStatus.COMPLETED, 50, False)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_handlers_freed_at_the_same_moment_each_take_a_different_caller_and_none_takes_one_twice():
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connection
    from django.test import Client

    from tests.routing.conftest import Twilio

    campaign = CampaignFactory(company_phone="+13035550190", queue_enabled=True)
    tn = TrackingNumberFactory(campaign=campaign)
    for i in range(6):
        CampaignHandlerFactory(campaign=campaign, handler=HandlerFactory(name=f"Desk {i}", concurrency_cap=1))
    twilio = Twilio(Client())
    for i in range(8):  # six calls take the six desks, two wait in the queue
        twilio.post("/voice/incoming", {"CallSid": f"CA{i}", "From": f"+1415555{i:04d}", "To": tn.number})
    assert QueuedCall.objects.count() == 2
    legs = list(CallAttempt.objects.filter(kind=AttemptKind.HANDLER).values_list("pk", flat=True))
    assert len(legs) == 6
    barrier = threading.Barrier(len(legs))

    def end(attempt_id: int) -> int:
        try:
            barrier.wait(timeout=30)
            return Twilio(Client()).post(f"/voice/attempt-status?attempt={attempt_id}",
                                         {"CallSid": "CA9", "CallStatus": "completed", "CallDuration": "30"}).status_code
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=len(legs)) as pool:
        assert list(pool.map(end, legs)) == [200] * len(legs)
    offers = list(CallAttempt.objects.filter(kind=AttemptKind.QUEUE).values_list("call_id", "handler_id"))
    assert len(offers) == 2 and len({c for c, _ in offers}) == 2 and len({h for _, h in offers}) == 2
    assert len(local.QUEUE_DIALS) == 2
    assert sorted(QueuedCall.objects.values_list("offered__call_id", flat=True)) == sorted(c for c, _ in offers)


def _end_leg(play, sid, django_capture_on_commit_callbacks):
    leg = CallAttempt.objects.get(call__call_sid=sid, kind=AttemptKind.HANDLER)
    with django_capture_on_commit_callbacks(execute=True):
        play(f"/voice/attempt-status?attempt={leg.pk}", {"CallSid": "CA9", "CallStatus": "completed", "CallDuration": "60"})


def _bridge(play, dial, caller_sid, queue_time="30"):
    return play(bridge_url(dial), {"CallSid": caller_sid, "QueueSid": "QU" + "0" * 32, "DequeingCallSid": dial.sid, "QueueTime": queue_time})


def test_a_caller_whose_hangup_only_the_status_callback_reports_is_not_offered_to_a_freed_handler(
        play, desk, django_capture_on_commit_callbacks):
    play.start("CA1")
    play.start("CA2")
    # CA2 hangs up while waiting; the <Enqueue action> (QueueResult=hangup) is lost: only /voice/status says so.
    play("/voice/status", {"CallSid": "CA2", "CallStatus": "completed", "CallDuration": "20", "SequenceNumber": "3"})
    gone = QueuedCall.objects.get(call__call_sid="CA2")
    assert gone.left_at is not None and gone.result == "hangup"
    assert "the caller hung up while waiting in the queue (the call's status)" in events("CA2")
    play.start("CA3")  # the next real caller waits
    _end_leg(play, "CA1", django_capture_on_commit_callbacks)
    [dial] = local.QUEUE_DIALS
    assert CallAttempt.objects.get(kind=AttemptKind.QUEUE).call.call_sid == "CA3"
    _bridge(play, dial, "CA3")
    call = Call.objects.get(call_sid="CA3")
    assert call.handler == desk and call.answered_at is not None
    assert not CallAttempt.objects.filter(call__call_sid="CA2").exists()


def test_a_queue_dial_ringing_for_a_caller_who_hung_up_takes_the_next_caller_and_is_credited_to_them(
        play, desk, django_capture_on_commit_callbacks):
    play.start("CA1")
    play.start("CA2")
    _end_leg(play, "CA1", django_capture_on_commit_callbacks)
    [dial] = local.QUEUE_DIALS  # the desk's line rings for CA2 ...
    play("/voice/status", {"CallSid": "CA2", "CallStatus": "completed", "CallDuration": "25"})  # ... who hangs up
    offer = CallAttempt.objects.get(kind=AttemptKind.QUEUE)
    assert (offer.status, offer.holds_slot) == (AttemptStatus.DIALING, True)  # the line still rings: the desk is busy
    assert play.start("CA3").find("Enqueue") is not None
    play(dial.status_url, {"CallSid": dial.sid, "CallStatus": "in-progress"})
    _bridge(play, dial, "CA3")  # Twilio dequeues whoever waits: CA3
    offer.refresh_from_db()
    assert (offer.call.call_sid, offer.status, offer.holds_slot, offer.counted) == ("CA3", AttemptStatus.ANSWERED, True, True)
    assert Call.objects.get(call_sid="CA3").handler == desk
    assert Call.objects.get(call_sid="CA2").handler is None
    play(dial.status_url, {"CallSid": dial.sid, "CallStatus": "completed", "CallDuration": "70"})
    offer.refresh_from_db()
    assert (offer.status, offer.duration, offer.holds_slot, offer.counted) == (AttemptStatus.COMPLETED, 70, False, True)


def test_a_queue_dial_answered_with_nobody_left_waiting_is_not_counted(play, desk, django_capture_on_commit_callbacks):
    play.start("CA1")
    play.start("CA2")
    _end_leg(play, "CA1", django_capture_on_commit_callbacks)
    [dial] = local.QUEUE_DIALS
    play("/voice/status", {"CallSid": "CA2", "CallStatus": "completed", "CallDuration": "25"})
    play(dial.status_url, {"CallSid": dial.sid, "CallStatus": "in-progress"})
    play(dial.status_url, {"CallSid": dial.sid, "CallStatus": "completed", "CallDuration": "30"})  # <Dial><Queue> timed out
    offer = CallAttempt.objects.get(kind=AttemptKind.QUEUE)
    assert (offer.status, offer.holds_slot, offer.counted) == (AttemptStatus.CANCELED, False, False)


@pytest.mark.parametrize("params", [{}, {"CallSid": "CAnobody"}, {"CallSid": "x" * 65}])
def test_a_queue_bridge_request_naming_no_waiting_call_answers_empty_twiml(play, desk, django_capture_on_commit_callbacks, params):
    play.start("CA1")
    play.start("CA2")
    _end_leg(play, "CA1", django_capture_on_commit_callbacks)
    [dial] = local.QUEUE_DIALS
    assert len(play(bridge_url(dial), params)) == 0
    assert len(play(bridge_url(dial).replace("attempt=", "attempt=9"), {"CallSid": "CA2"})) == 0
    assert Call.objects.get(call_sid="CA2").answered_at is None


def test_a_retried_queue_bridge_request_records_the_bridge_once(play, desk, django_capture_on_commit_callbacks):
    play.start("CA1")
    play.start("CA2")
    _end_leg(play, "CA1", django_capture_on_commit_callbacks)
    [dial] = local.QUEUE_DIALS
    _bridge(play, dial, "CA2")
    _bridge(play, dial, "CA2")
    assert [m for m in events("CA2") if m.startswith("taken from the queue by")] == ["taken from the queue by Front desk after 30 s"]
    assert CallAttempt.objects.get(kind=AttemptKind.QUEUE).sequence == 1
    play(dial.status_url, {"CallSid": dial.sid, "CallStatus": "completed", "CallDuration": "40"})
    _bridge(play, dial, "CA2")  # a retry arriving after the leg ended leaves it ended
    offer = CallAttempt.objects.get(kind=AttemptKind.QUEUE)
    assert (offer.status, offer.holds_slot, offer.duration) == (AttemptStatus.COMPLETED, False, 40)


def _queue_race(n: int):
    """``n`` desks each on a call, ``n`` callers waiting; every desk freed at the same moment (threads)."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connection
    from django.test import Client

    from tests.routing.conftest import Twilio

    campaign = CampaignFactory(company_phone="+13035550190", queue_enabled=True, queue_max_wait=600)
    tn = TrackingNumberFactory(campaign=campaign)
    for i in range(n):
        CampaignHandlerFactory(campaign=campaign, handler=HandlerFactory(name=f"Desk {i}", concurrency_cap=1))
    twilio = Twilio(Client())
    for i in range(2 * n):
        twilio.post("/voice/incoming", {"CallSid": f"CA{i:02d}", "From": f"+1415555{i:04d}", "To": tn.number})
    assert QueuedCall.objects.count() == n

    def at_once(posts):
        barrier = threading.Barrier(len(posts))

        def post(args):
            url, params = args
            try:
                barrier.wait(timeout=30)
                return Twilio(Client()).post(url, params).status_code
            finally:
                connection.close()

        with ThreadPoolExecutor(max_workers=len(posts)) as pool:
            assert list(pool.map(post, posts)) == [200] * len(posts)

    legs = CallAttempt.objects.filter(kind=AttemptKind.HANDLER).values_list("pk", flat=True)
    at_once([(f"/voice/attempt-status?attempt={a}", {"CallSid": "CA99", "CallStatus": "completed", "CallDuration": "30"}) for a in legs])
    return at_once


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("n", [2, 6])
def test_handlers_freed_together_are_credited_with_the_callers_twilio_bridged_to_them_whatever_the_order(n, assert_valid_twiml):
    at_once = _queue_race(n)
    dials = list(local.QUEUE_DIALS)
    assert len(dials) == n
    for dial in dials:
        assert_valid_twiml(dial.twiml)
    offered = {d.sid: CallAttempt.objects.get(pk=int(d.status_url.rsplit("=", 1)[1])) for d in dials}
    # Twilio bridges the first caller waiting to whichever line answers first: the lines answer in the reverse order
    # of their offers, so each takes a caller it was not offered for.
    waiting = list(QueuedCall.objects.order_by("enqueued_at", "id").values_list("call__call_sid", flat=True))
    answering = sorted(dials, key=lambda d: offered[d.sid].call.queued.enqueued_at, reverse=True)
    pairs = list(zip(answering, waiting, strict=True))
    assert all(offered[d.sid].call.call_sid != sid for d, sid in pairs) or n == 1
    at_once([(d.status_url, {"CallSid": d.sid, "CallStatus": "in-progress"}) for d in dials])
    at_once([(bridge_url(d), {"CallSid": sid, "QueueSid": "QU" + "0" * 32, "DequeingCallSid": d.sid, "QueueTime": "40"}) for d, sid in pairs])
    for dial, sid in pairs:
        leg = CallAttempt.objects.select_related("call").get(pk=offered[dial.sid].pk)
        call = Call.objects.get(call_sid=sid)
        assert (leg.call.call_sid, leg.status, leg.holds_slot) == (sid, AttemptStatus.ANSWERED, True)
        assert (call.handler_id, call.answered_at is not None) == (leg.handler_id, True)
        assert list(call.attempts.values_list("pk", flat=True)) == [leg.pk]  # only the leg that took them
    assert set(QueuedCall.objects.values_list("result", flat=True)) == {"bridged"}
    assert sorted(QueuedCall.objects.values_list("offered_id", flat=True)) == sorted(a.pk for a in offered.values())
    assert len(set(Call.objects.filter(queued__isnull=False).values_list("handler_id", flat=True))) == n
    # The legs end: each handler's talk is on the caller it took; nobody is left waiting, nothing more is dialled.
    at_once([(d.status_url, {"CallSid": d.sid, "CallStatus": "completed", "CallDuration": "50"}) for d in dials])
    assert len(local.QUEUE_DIALS) == n
    assert set(CallAttempt.objects.filter(kind=AttemptKind.QUEUE).values_list("status", "counted", "holds_slot")) == {
        (AttemptStatus.COMPLETED, True, False)}


def _answered(play, sid):
    """A call the handler answers and finishes (its dial result): one connection counted this hour."""
    action = play.start(sid).find("Dial").get("action")
    play(action, {"CallSid": sid, "DialCallStatus": "completed", "DialCallDuration": "60"})


def _new_york(hour: int, minute: int, second: int = 0):
    from datetime import datetime
    from zoneinfo import ZoneInfo

    return datetime(2026, 12, 7, hour, minute, second, tzinfo=ZoneInfo("America/New_York"))


@pytest.fixture
def capped_desk(campaign):
    """A handler who takes one call an hour (and one a day, where a test says so), in New York."""
    h = HandlerFactory(name="Hourly desk", hourly_cap=1, timezone="America/New_York")
    CampaignHandlerFactory(campaign=campaign, handler=h)
    return h


def test_a_caller_is_not_queued_for_a_handler_whose_hourly_cap_outlasts_the_wait(play, capped_desk, time_machine):
    time_machine.move_to(_new_york(10, 30), tick=False)
    _answered(play, "CA1")
    time_machine.move_to(_new_york(10, 31), tick=False)
    doc = play.start("CA2")  # the hour ends in 29 minutes; the caller would wait at most 2
    assert doc.find("Enqueue") is None
    assert [n.text for n in doc.findall("Dial/Number")] == ["+13035550190"]  # straight down the fallback chain
    assert not QueuedCall.objects.exists()


def test_a_caller_is_not_queued_for_a_handler_at_its_daily_cap(play, capped_desk, campaign, time_machine):
    capped_desk.hourly_cap, capped_desk.daily_cap = None, 1
    capped_desk.save()
    campaign.queue_max_wait = 3600
    campaign.save()
    time_machine.move_to(_new_york(10, 30), tick=False)
    _answered(play, "CA1")
    doc = play.start("CA2")
    assert doc.find("Enqueue") is None and not QueuedCall.objects.exists()


def test_a_caller_waits_for_an_hourly_cap_whose_hour_ends_within_the_wait_and_is_then_offered(
        play, capped_desk, time_machine, django_capture_on_commit_callbacks):
    time_machine.move_to(_new_york(10, 58, 30), tick=False)
    _answered(play, "CA1")
    time_machine.move_to(_new_york(10, 59), tick=False)
    wait = play.start("CA2").find("Enqueue").get("waitUrl")  # the hour ends in 60 s, within the 120 s wait
    assert "queued: every handler busy (Hourly desk)" in events("CA2")
    doc = play(wait, {"CallSid": "CA2", "QueuePosition": "1", "QueueTime": "30"})
    assert doc.find("Say") is not None and local.QUEUE_DIALS == []  # still this hour: nobody is offered
    time_machine.move_to(_new_york(11, 0, 10), tick=False)
    with django_capture_on_commit_callbacks(execute=True):
        doc = play(wait, {"CallSid": "CA2", "QueuePosition": "1", "QueueTime": "70"})
    assert doc.find("Play").text == MUSIC  # the caller keeps waiting while the desk's line rings
    [dial] = local.QUEUE_DIALS
    assert dial.to == capped_desk.receiving_number.number
    offer = CallAttempt.objects.get(kind=AttemptKind.QUEUE)
    assert (offer.call.call_sid, offer.handler) == ("CA2", capped_desk)
    with django_capture_on_commit_callbacks(execute=True):
        play(wait, {"CallSid": "CA2", "QueuePosition": "1", "QueueTime": "85"})
    assert len(local.QUEUE_DIALS) == 1  # offered once
