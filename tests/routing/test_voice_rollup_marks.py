"""A voice webhook marks its call's day for the report rollups (tracking/sql/call_rollup_dirty.sql) only when it
changes a reported figure: the incoming call (a new call), an answer, the talk time, the final status, a handler
skipped at a cap; not the menu repeated, the fallback chain's next number, a retried webhook."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.utils import timezone
from lxml import etree

from tests.numbers.factories import TrackingNumberFactory
from tests.tracking.factories import CampaignFactory, CampaignHandlerFactory, HandlerFactory, SourceFactory
from tracking.models import Call, CallRollupDirty, CallRollupZone, IVROption

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]
CALLER = "+14155550100"


def root(response) -> etree._Element:
    assert response.status_code == 200, response.content
    return etree.fromstring(response.content)


class Flow:
    """One caller's signed webhooks, each counted: how many rollup marks it wrote."""

    def __init__(self, twilio, tn, sid: str) -> None:
        self.twilio, self.tn, self.sid = twilio, tn, sid
        self.marks: list[tuple[str, int]] = []

    def counted(self, name: str, post: Callable[[], Any]) -> Any:
        before = CallRollupDirty.objects.count()
        out = post()
        self.marks.append((name, CallRollupDirty.objects.count() - before))
        return out

    def start(self) -> etree._Element:
        return self.counted("incoming", lambda: root(self.twilio.post("/voice/incoming", {"CallSid": self.sid, "From": CALLER, "To": self.tn.number})))

    def no_key(self, name: str, doc: etree._Element) -> etree._Element:
        return self.counted(name, lambda: root(self.twilio.post(doc.find("Redirect").text, {"CallSid": self.sid})))

    def dial_result(self, name: str, doc: etree._Element, status: str, duration: str = "0") -> etree._Element:
        action = doc.find("Dial").get("action")
        return self.counted(name, lambda: root(self.twilio.post(action, {"CallSid": self.sid, "DialCallStatus": status, "DialCallDuration": duration})))

    def whisper(self, name: str, doc: etree._Element) -> None:
        self.counted(name, lambda: root(self.twilio.post(doc.find("Dial/Number").get("url"), {"CallSid": self.sid + "leg"})))

    def status(self, name: str, status: str, seq: int, duration: str = "0") -> None:
        params = {"CallSid": self.sid, "CallStatus": status, "CallDuration": duration, "SequenceNumber": str(seq)}
        self.counted(name, lambda: root(self.twilio.post("/voice/status", params)))


@pytest.fixture
def campaign():
    """Rollups kept in one zone (so a mark is one row); a campaign with a menu, a fallback chain (its company phone)."""
    CallRollupZone.objects.create(tz="America/Chicago", refreshed_at=timezone.now())
    campaign = CampaignFactory(name="Roofing", company_phone="+13035550190", ivr_prompt="Press 1.", ivr_repeat=1, ivr_default_digit="1")
    IVROption.objects.create(campaign=campaign, digit="1", tag_key="lang", tag_value="en")
    return campaign


@pytest.fixture
def tn(campaign):
    return TrackingNumberFactory(campaign=campaign, source=SourceFactory(name="Google Ads"))


def handler(campaign, priority: int, **kwargs):
    h = HandlerFactory(priority=priority, **kwargs)
    CampaignHandlerFactory(campaign=campaign, handler=h)
    return h


def test_only_the_webhooks_that_change_a_figure_mark_the_calls_day(twilio, campaign, tn):
    handler(campaign, 1)
    flow = Flow(twilio, tn, "CAmarks")
    menu = flow.start()
    again = flow.no_key("menu repeated (no key)", menu)
    flow.no_key("menu repeat retried", menu)
    dial = flow.no_key("default key: the handler dialled", again)
    chain = flow.dial_result("no answer: the fallback chain dialled", dial, "no-answer")
    flow.dial_result("dial result retried", dial, "no-answer")
    flow.whisper("whisper: the fallback answered", chain)
    flow.whisper("whisper retried", chain)
    flow.status("status in progress (already so)", "in-progress", 1)
    flow.dial_result("dial result: the talk time", chain, "completed", "40")
    flow.dial_result("dial result retried again", chain, "completed", "40")
    flow.status("final status", "completed", 3, "50")
    assert flow.marks == [
        ("incoming", 1),
        ("menu repeated (no key)", 0),
        ("menu repeat retried", 0),
        ("default key: the handler dialled", 1),  # the call's handler: the handler breakdown's key
        ("no answer: the fallback chain dialled", 0),
        ("dial result retried", 0),
        ("whisper: the fallback answered", 1),
        ("whisper retried", 0),
        ("status in progress (already so)", 0),
        ("dial result: the talk time", 1),
        ("dial result retried again", 0),
        ("final status", 1),
    ]
    call = Call.objects.get(call_sid="CAmarks")
    assert (call.status, call.talk_time, call.fallback_step) == ("completed", 40, "company_phone")
    assert set(call.answers) >= {"gather:1:", "gather:2:", "dial:1", "dial:2"}  # what the unmarked writes stored


def test_a_handler_skipped_at_a_cap_on_a_dial_result_marks_the_day(twilio, campaign, tn):
    """The call's handler and outcome stay the same (the fallback chain is dialled next), but the capped handlers'
    alert counts one call more: the decision's capped skips are a reported figure."""
    campaign.ivr_prompt = ""
    campaign.save()
    first, capped = handler(campaign, 1), handler(campaign, 2, concurrency_cap=1)
    mine, other = Flow(twilio, tn, "CAmine"), Flow(twilio, tn, "CAother")
    dial = mine.start()  # plan: first, then capped (free as yet)
    other.dial_result("other: next handler", other.start(), "no-answer")  # the other call takes the capped one's slot
    mine.dial_result("no answer: the next handler is at its cap", dial, "no-answer")
    # The incoming call: one INSERT, written at the end of its turn with its handler (a breakdown's key) as routed,
    # not inserted and then updated.
    assert mine.marks == [("incoming", 1), ("no answer: the next handler is at its cap", 1)]
    call = Call.objects.get(call_sid="CAmine")
    assert call.handler_id == first.pk and call.answered_at is None and call.fallback_step == "company_phone"
    assert call.state.capped_handler_ids() == [capped.pk]
