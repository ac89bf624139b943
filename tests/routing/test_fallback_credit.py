"""The fallback chain reaching a handler's line: a handler routing skipped (closed) is reached as the tracking number's
agent; the call is recorded as answered by the fallback chain and credited to that handler only when the campaign says
so (``Campaign.fallback_credit``), on the call page and in the dashboard's handler breakdown."""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

import pytest
from django.urls import reverse
from lxml import etree

from calltrack import reports
from calltrack.scoping import Scope
from routing.services import handler_loads, handler_option
from tests.numbers.factories import TrackingNumberFactory
from tests.tracking.factories import CampaignFactory, CampaignHandlerFactory, HandlerFactory, SourceFactory
from tracking.models import AttemptKind, Call, CallAttempt, ConversionRule, FallbackCredit

pytestmark = pytest.mark.django_db
CLOSED = {"always_open": False, "business_hours": {"mon": ["00:00-00:01"]}, "timezone": "Pacific/Kiritimati"}


@pytest.fixture
def campaign():
    c = CampaignFactory(name="Roofing", company_phone="+13035550190")
    ConversionRule.objects.create(campaign=c, kind="timer", min_duration=30, revenue=40, payout=15)
    return c


@pytest.fixture
def night(campaign):
    """A buyer closed now (routing skips it), whose line is also the tracking number's assigned agent."""
    h = HandlerFactory(name="Night desk", hourly_cap=5, **CLOSED)
    CampaignHandlerFactory(campaign=campaign, handler=h)
    return h


@pytest.fixture
def tn(campaign, night):
    return TrackingNumberFactory(campaign=campaign, source=SourceFactory(name="Google Ads"), assigned_agent=night.receiving_number)


@pytest.fixture
def answered_by_agent(twilio, tn, night, assert_valid_twiml):
    """A call routed past the closed Night desk to the fallback chain, whose first step (the tracking number's agent,
    Night desk's line) answers and talks 90 s; the call then ends."""

    def run(sid="CA1"):
        def post(url, params):
            response = twilio.post(url, params)
            assert response.status_code == 200, response.content
            assert_valid_twiml(response.content)
            return etree.fromstring(response.content)

        doc = post("/voice/incoming", {"CallSid": sid, "From": "+14155550100", "To": tn.number})
        [number] = doc.findall("Dial/Number")
        assert number.text == night.receiving_number.number
        post(number.get("statusCallback"), {"CallSid": "CAleg" + sid, "CallStatus": "in-progress"})
        post(doc.find("Dial").get("action"), {"CallSid": sid, "DialCallStatus": "completed", "DialCallDuration": "90"})
        post("/voice/status", {"CallSid": sid, "CallStatus": "completed", "CallDuration": "95", "SequenceNumber": "9"})
        return Call.objects.get(call_sid=sid)

    return run


def test_a_handler_skipped_as_closed_and_reached_as_the_numbers_agent_is_not_credited_by_default(answered_by_agent, night):
    call = answered_by_agent()
    assert call.decision["skipped"][0]["reason"] == "closed"
    leg = CallAttempt.objects.get(call=call)
    assert (leg.kind, leg.number_dialed, leg.handler, leg.counted, leg.holds_slot) == (
        AttemptKind.FALLBACK, night.receiving_number.number, night, False, False)
    assert (call.handler, call.fallback_step, call.answered_at is not None, call.talk_time) == (None, "number_agent", True, 90)
    assert (call.revenue_converted, call.revenue) == (False, 0)  # no buyer is billed
    assert (call.payout_converted, call.payout) == (True, 15)  # the source still brought a connected call
    assert "answered by the fallback chain: no handler is credited" in call.conversion_reason
    load = handler_loads(options=[handler_option(night.pk)], at=call.started_at).get(night.pk)
    assert load is None or (load.hour, load.total) == (0, 0)  # nothing counted toward Night desk's caps


def test_a_fallback_leg_not_credited_still_holds_the_handlers_line_while_it_rings(twilio, tn, night):
    twilio.post("/voice/incoming", {"CallSid": "CA1", "From": "+14155550100", "To": tn.number})
    leg = CallAttempt.objects.get()
    assert (leg.handler, leg.holds_slot, leg.counted) == (night, True, False)
    assert handler_loads(options=[handler_option(night.pk)], at=leg.started_at)[night.pk].in_progress == 1


def test_with_the_campaign_crediting_assigned_agents_the_handler_is_credited(answered_by_agent, campaign, night):
    campaign.fallback_credit = FallbackCredit.ASSIGNED_AGENT
    campaign.save()
    call = answered_by_agent()
    leg = CallAttempt.objects.get(call=call)
    assert (leg.kind, leg.handler, leg.counted) == (AttemptKind.FALLBACK, night, True)
    assert (call.handler, call.fallback_step, call.revenue_converted, call.revenue) == (night, "number_agent", True, 40)
    assert handler_loads(options=[handler_option(night.pk)], at=call.started_at)[night.pk].hour == 1


def test_crediting_assigned_agents_does_not_credit_the_company_phone_when_it_is_a_handlers_line(twilio, campaign, night):
    campaign.fallback_credit = FallbackCredit.ASSIGNED_AGENT
    campaign.company_phone = night.receiving_number.number
    campaign.save()
    tn = TrackingNumberFactory(campaign=campaign)
    doc = etree.fromstring(twilio.post("/voice/incoming", {"CallSid": "CA7", "From": "+14155550100", "To": tn.number}).content)
    assert [n.text for n in doc.findall("Dial/Number")] == [night.receiving_number.number]
    twilio.post(doc.find("Dial").get("action"), {"CallSid": "CA7", "DialCallStatus": "completed", "DialCallDuration": "40"})
    call = Call.objects.get(call_sid="CA7")
    assert (call.handler, call.fallback_step) == (None, "company_phone")


def test_the_call_page_says_the_fallback_chain_answered_on_a_handlers_line_not_credited(answered_by_agent, admin_client):
    call = answered_by_agent()
    page = admin_client.get(reverse("admin:tracking_call_change", args=[call.pk])).content.decode()
    assert "Night desk was closed" in page
    assert "the tracking number&#x27;s agent" in page and "(fallback chain; Night desk&#x27;s line, not credited to them) answered" in page


def test_the_dashboards_handler_breakdown_shows_fallback_answers_apart_from_the_handler(answered_by_agent, night, admin_client):
    call = answered_by_agent()
    credited = HandlerFactory(name="Day desk")
    Call.objects.create(call_sid="CA2", campaign=call.campaign, handler=credited, caller_number="+14155550101",
                        called_number=call.called_number, answered_at=call.answered_at)
    period = reports.period_for("7d")
    rows = {r.label: r for r in reports.report_breakdown(scope=Scope(), period=period, by="handler")}
    assert "Night desk" not in rows
    fallback = rows["(fallback chain, no handler credited)"]
    assert fallback.totals.calls == 1 and rows["Day desk"].totals.calls == 1
    page = admin_client.get(reverse("admin:index") + "?range=7d&by=handler")
    row = next(r for r in page.context["breakdown_rows"] if r["label"] == "(fallback chain, no handler credited)")
    log = admin_client.get(row["url"])
    assert log.status_code == 200
    assert list(log.context["cl"].queryset.values_list("call_sid", flat=True)) == ["CA1"]
    assert parse_qs(urlparse(row["url"]).query)["fallback_chain"] == ["only"]
    # The "(none)" row's link leaves them out: each row's link opens exactly the calls it counts.
    Call.objects.create(call_sid="CA3", campaign=call.campaign, caller_number="+14155550102", called_number=call.called_number)
    page = admin_client.get(reverse("admin:index") + "?range=7d&by=handler")
    none = next(r for r in page.context["breakdown_rows"] if r["label"] == "(none)")
    listed = admin_client.get(none["url"]).context["cl"].queryset.values_list("call_sid", flat=True)
    counted = {r.label: r for r in reports.report_breakdown(scope=Scope(), period=period, by="handler")}["(none)"]
    assert list(listed) == ["CA3"] and counted.totals.calls == 1


def test_the_api_and_the_campaign_admin_read_and_write_the_fallback_credit(campaign, admin_client):
    from tests.api.conftest import UserFactory, grant, token_client

    user = UserFactory(username="staff", is_staff=True)
    grant(user, "all")
    staff = token_client(user)
    url = f"/api/v1/campaigns/{campaign.pk}/"
    assert staff.get(url).json()["fallback_credit"] == "never"
    response = staff.patch(url, {"fallback_credit": "assigned_agent"}, format="json")
    assert response.status_code == 200 and response.json()["fallback_credit"] == "assigned_agent"
    campaign.refresh_from_db()
    assert campaign.fallback_credit == FallbackCredit.ASSIGNED_AGENT
    assert staff.patch(url, {"fallback_credit": "always"}, format="json").status_code == 400
    assert staff.patch(url, {"fallback_credit": "\x00"}, format="json").status_code == 400
    page = admin_client.get(reverse("admin:tracking_campaign_change", args=[campaign.pk])).content.decode()
    assert "Credit fallback answers to handlers" in page
    assert "recorded as answered by the fallback chain, with no handler" in page
