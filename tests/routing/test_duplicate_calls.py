"""Duplicate-call routing per handler (Ringba's "restrict duplicates"), played through the signed voice webhooks: a
repeat caller within a handler's window is not sent to the handler that already answered (or converted) them, with
the reason in the call's state and its route in words; the restriction costs one query, only where a handler has it."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from lxml import etree

from tests.numbers.factories import TrackingNumberFactory
from tests.routing.test_voice_flow import Flow, dialled
from tests.tracking.factories import CampaignFactory, CampaignHandlerFactory, ConversionRuleFactory, HandlerFactory, SourceFactory
from tracking.models import Call, MoneyChange
from tracking.timeline import call_route_story

pytestmark = pytest.mark.django_db


@pytest.fixture
def campaign():
    return CampaignFactory(name="Solar leads", company_phone="+13035550190")


@pytest.fixture
def tn(campaign):
    return TrackingNumberFactory(campaign=campaign, source=SourceFactory(name="Google Ads"))


def handler(campaign, priority=1, **kwargs):
    h = HandlerFactory(priority=priority, **kwargs)
    CampaignHandlerFactory(campaign=campaign, handler=h)
    return h


def answered_call(twilio, tn, sid, *, talk_time=60, assert_valid_twiml=None):
    """A call played to its end: the first handler dialled answers and talks ``talk_time`` seconds."""
    flow = Flow(twilio, tn, sid=sid)
    doc = flow.start()
    end = flow.dial_result(doc, "completed", str(talk_time))
    if assert_valid_twiml is not None:
        assert_valid_twiml(etree.tostring(end))
    flow.status("completed", duration=str(talk_time + 5))
    return Call.objects.get(call_sid=sid), dialled(doc)


def test_a_repeat_caller_within_the_window_skips_the_handler_who_answered_them_and_goes_to_the_next(twilio, tn, campaign, assert_valid_twiml):
    buyer = handler(campaign, 1, name="Solar buyer", duplicate_days=7)
    backup = handler(campaign, 2, name="Backup buyer")
    first, first_dialled = answered_call(twilio, tn, "CAdup1", assert_valid_twiml=assert_valid_twiml)
    assert first_dialled == [buyer.receiving_number.number] and first.handler == buyer
    Call.objects.filter(pk=first.pk).update(started_at=timezone.now() - timedelta(days=3, hours=1))

    doc = Flow(twilio, tn, sid="CAdup2").start()
    assert_valid_twiml(etree.tostring(doc))
    assert dialled(doc) == [backup.receiving_number.number]
    call = Call.objects.get(call_sid="CAdup2")
    skip = next(s for s in call.state.skipped if s.handler_id == buyer.pk)
    assert (skip.reason, skip.detail) == ("duplicate", "answered 3 days ago; restricts duplicates for 7 days")
    assert "Solar buyer had this caller already (answered 3 days ago; restricts duplicates for 7 days)" in call_route_story(call)


def test_after_the_window_the_handler_takes_the_caller_again(twilio, tn, campaign):
    buyer = handler(campaign, 1, duplicate_days=7)
    handler(campaign, 2)
    first, _ = answered_call(twilio, tn, "CAold1")
    Call.objects.filter(pk=first.pk).update(started_at=timezone.now() - timedelta(days=7, hours=1))
    doc = Flow(twilio, tn, sid="CAold2").start()
    assert dialled(doc) == [buyer.receiving_number.number]
    assert not any(s.reason == "duplicate" for s in Call.objects.get(call_sid="CAold2").state.skipped)


def test_a_handler_without_the_setting_takes_repeat_callers(twilio, tn, campaign):
    buyer = handler(campaign, 1)
    handler(campaign, 2, duplicate_days=30)  # another handler's setting does not restrict this one
    answered_call(twilio, tn, "CAfree1")
    assert dialled(Flow(twilio, tn, sid="CAfree2").start()) == [buyer.receiving_number.number]


def test_converted_mode_skips_the_handler_only_after_a_conversion(twilio, tn, campaign):
    buyer = handler(campaign, 1, name="Pay-per-call buyer", duplicate_days=30, duplicate_on="converted")
    backup = handler(campaign, 2)
    ConversionRuleFactory(campaign=campaign, min_duration=90, revenue=Decimal("40"), payout=Decimal("10"))
    short, _ = answered_call(twilio, tn, "CAconv1", talk_time=20)  # answered, under the 90 s timer: not converted
    assert short.handler == buyer and not short.revenue_converted
    paid, paid_dialled = answered_call(twilio, tn, "CAconv2", talk_time=120)
    assert paid_dialled == [buyer.receiving_number.number] and paid.revenue_converted

    doc = Flow(twilio, tn, sid="CAconv3").start()
    assert dialled(doc) == [backup.receiving_number.number]
    call = Call.objects.get(call_sid="CAconv3")
    skip = next(s for s in call.state.skipped if s.handler_id == buyer.pk)
    assert skip.reason == "duplicate" and skip.detail.startswith("converted ") and skip.detail.endswith("for 30 days")
    assert any(p.startswith("Pay-per-call buyer had this caller already (converted") for p in call_route_story(call))


def test_an_anonymous_caller_is_never_a_duplicate(twilio, tn, campaign):
    buyer = handler(campaign, 1, duplicate_days=7)
    handler(campaign, 2)
    for sid in ("CAanon1", "CAanon2"):
        flow = Flow(twilio, tn, sid=sid)
        doc = flow.start(From="Anonymous")
        assert dialled(doc) == [buyer.receiving_number.number]
        flow.dial_result(doc, "completed", "60")
        flow.status("completed", duration="65")


def test_the_callers_history_is_one_query_only_where_a_handler_restricts_duplicates(twilio, tn, campaign):
    handler(campaign, 1)
    handler(campaign, 2)
    Flow(twilio, tn, sid="CAq0").start()  # the configuration is loaded (not counted below)
    with CaptureQueriesContext(connection) as capture:
        Flow(twilio, tn, sid="CAq1").start()
    plain = list(capture.captured_queries)  # now: the connection's log is a bounded deque
    # In the first priority group: a priority-weight plan decides a later group (and reads its history) only when it
    # reaches it (routing.services.plan.by_priority_groups).
    restricting = handler(campaign, 1, duplicate_days=7)
    Flow(twilio, tn, sid="CAq2").start()  # the configuration is loaded again
    with CaptureQueriesContext(connection) as capture:
        Flow(twilio, tn, sid="CAq3").start()
    restricted = list(capture.captured_queries)
    def history(queries):
        return [q["sql"] for q in queries if q["sql"].startswith("SELECT") and "GROUP BY" in q["sql"] and "caller_number" in q["sql"]]

    assert len(history(restricted)) == 1 and history(plain) == []
    assert len(restricted) == len(plain) + 1
    assert restricting.pk


def _form_data(client, url):
    """The change form's current values, as a browser posts them (inline management forms included)."""
    from lxml import html

    doc = html.fromstring(client.get(url).content)
    form = doc.forms[-1] if len(doc.forms) > 1 else doc.forms[0]
    return dict(form.form_values())


def test_the_handler_admin_sets_the_restriction_and_the_next_call_obeys_it(admin_client, twilio, tn, campaign):
    buyer = handler(campaign, 1, name="Solar buyer")
    backup = handler(campaign, 2)
    answered_call(twilio, tn, "CAadm1")
    url = reverse("admin:tracking_handler_change", args=[buyer.pk])
    assert 'name="duplicate_days"' in admin_client.get(url).content.decode()
    form = _form_data(admin_client, url)
    form.update({"duplicate_days": "5", "duplicate_on": "answered"})
    response = admin_client.post(url, form)
    assert response.status_code == 302, response.content.decode()[:2000]
    buyer.refresh_from_db()
    assert (buyer.duplicate_days, buyer.duplicate_on) == (5, "answered")
    assert dialled(Flow(twilio, tn, sid="CAadm2").start()) == [backup.receiving_number.number]

    form.update({"duplicate_days": "", "duplicate_on": "converted"})
    response = admin_client.post(url, form)
    assert response.status_code == 200 and "Give the days in which a repeat caller is a duplicate" in response.content.decode()


def test_the_campaign_admin_sets_a_rules_dedupe_count(admin_client, campaign):
    rule = ConversionRuleFactory(campaign=campaign, min_duration=30, dedupe_window=24)
    url = reverse("admin:tracking_campaign_change", args=[campaign.pk])
    form = _form_data(admin_client, url)
    key = next(k for k, v in form.items() if k.startswith("conversion_rules-") and k.endswith("-id") and v == str(rule.pk))
    form[key.replace("-id", "-dedupe_max_payable")] = "2"
    response = admin_client.post(url, form)
    assert response.status_code == 302, response.content.decode()[:2000]
    rule.refresh_from_db()
    assert rule.dedupe_max_payable == 2
    change = MoneyChange.objects.of("conversionrule", rule.pk).filter(op="update").latest("id")
    assert (change.before["dedupe_max_payable"], change.after["dedupe_max_payable"]) == (None, 2)



def test_a_campaign_may_override_the_handlers_window_or_lift_it(twilio, tn, campaign):
    buyer = HandlerFactory(name="Solar buyer", priority=1, duplicate_days=30)
    entry = CampaignHandlerFactory(campaign=campaign, handler=buyer, duplicate_days=0)  # not restricted in this campaign
    backup = handler(campaign, 2)
    first, _ = answered_call(twilio, tn, "CAovr1")
    Call.objects.filter(pk=first.pk).update(started_at=timezone.now() - timedelta(days=3, hours=1))
    assert dialled(Flow(twilio, tn, sid="CAovr2").start()) == [buyer.receiving_number.number]

    Call.objects.filter(call_sid="CAovr2").update(answered_at=None, handler=None)
    entry.duplicate_days = 5
    entry.save()
    doc = Flow(twilio, tn, sid="CAovr3").start()
    assert dialled(doc) == [backup.receiving_number.number]
    skip = next(s for s in Call.objects.get(call_sid="CAovr3").state.skipped if s.handler_id == buyer.pk)
    assert skip.detail == "answered 3 days ago; restricts duplicates for 5 days"
