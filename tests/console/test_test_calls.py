"""Test calls: the admin's "Test call" is a dialog whose CSRF-checked POST plays a call through the real voice webhooks;
the call is flagged ``is_test`` (call page, call log, export, API) and left out of the figures, the caps' counts,
conversions and, unless asked, webhooks; the form's caller place, keys and clock reach routing."""

from __future__ import annotations

import io
import json
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.urls import reverse

from calltrack import reports
from calltrack.scoping import Scope
from routing.services.common import TEST_CALL_PARAM, TestCallOptions, call_test_marker
from routing.services.config import handler_option
from routing.services.slots import cap_counters_fold, handler_loads
from routing.services.test_call import test_call_place
from tests.numbers.factories import TrackingNumberFactory
from tests.tracking.factories import CampaignFactory, CampaignHandlerFactory, HandlerFactory, WebhookFactory
from tracking.models import Call, CallRollupDirty, ConversionRule, IVROption, WebhookDelivery
from tracking.services import conversions
from tracking.services.reports import report_rollups_refresh

pytestmark = pytest.mark.django_db
NY = ZoneInfo("America/New_York")


@pytest.fixture(autouse=True)
def _no_login_log_for_force_login(settings):
    settings.AXES_ENABLED = False  # force_login has no address, which PostgreSQL's inet column refuses
    settings.CALLTRACK_PUBLIC_BASE_URL = "http://testserver"
    settings.TIME_ZONE = "America/New_York"


@pytest.fixture
def campaign():
    campaign = CampaignFactory(name="Roof repairs")
    desk = HandlerFactory(name="Denver desk", daily_cap=50)
    CampaignHandlerFactory(campaign=campaign, handler=desk)
    ConversionRule.objects.create(campaign=campaign, kind="timer", min_duration=0, revenue=Decimal("40.00"), payout=Decimal("15.00"))
    return campaign


@pytest.fixture
def number(campaign):
    return TrackingNumberFactory(campaign=campaign)


def _url(campaign) -> str:
    return reverse("admin:tracking_campaign_test_call", args=[campaign.pk])


def _post(client, url: str, **fields):
    data = {"_form_submitted": "on", "caller": "+12025550100", "from_state": "", "from_zip": "", "from_city": "", "caller_name": "",
            "stir_verstat": "", "digits": "", "clock": ""}
    data.update(fields)
    return client.post(url, data)


def _real_call(number) -> Call:
    call_command("simulate_call", to=number.number, caller="+13035550123", stdout=io.StringIO())
    return Call.objects.get(is_test=False, caller_number="+13035550123")


def test_the_test_call_button_shows_a_form_and_places_no_call(admin_client, campaign, number):
    for url in (_url(campaign), reverse("admin:numbers_trackingnumber_test_call", args=[number.pk])):
        page = admin_client.get(url).content.decode()
        assert 'name="caller"' in page and 'value="+12025550100"' in page and 'name="digits"' in page
        assert 'name="send_webhooks"' in page and 'name="clock"' in page and "csrfmiddlewaretoken" in page
    assert not Call.objects.exists()


def test_a_post_without_the_csrf_token_is_refused_and_places_no_call(admin_user, campaign, number):
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)
    response = _post(client, _url(campaign))
    assert response.status_code == 403 and not Call.objects.exists()


def test_a_post_places_a_call_flagged_as_a_test_and_its_page_says_so(admin_client, campaign, number):
    response = _post(admin_client, _url(campaign))
    call = Call.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("admin:tracking_call_change", args=[call.pk])
    assert call.is_test and call.called_number == number.number and call.status == "completed" and call.handler.name == "Denver desk"
    page = admin_client.get(response["Location"]).content.decode()
    assert 'id="call-test-badge"' in page and "Test call" in page and "no webhook sent" in page and "Denver desk answered" in page


def test_the_dialogs_htmx_post_is_answered_with_a_redirect_for_htmx(admin_client, campaign, number):
    response = admin_client.post(_url(campaign), {"_form_submitted": "on", "caller": "(202) 555-0100"}, HTTP_HX_REQUEST="true")
    call = Call.objects.get()
    assert response.status_code == 204 and response["HX-Redirect"] == reverse("admin:tracking_call_change", args=[call.pk])
    assert call.caller_number == "+12025550100"


def test_a_bad_form_is_shown_again_with_its_errors_and_places_no_call(admin_client, campaign, number):
    page = _post(admin_client, _url(campaign), caller="not a number", digits="12x").content.decode()
    assert "Only 0-9, * and #" in page and not Call.objects.exists()


def test_the_tracking_numbers_test_call_calls_that_number(admin_client, campaign, number):
    other = TrackingNumberFactory(campaign=campaign)
    response = _post(admin_client, reverse("admin:numbers_trackingnumber_test_call", args=[other.pk]))
    assert response.status_code == 302 and Call.objects.get().called_number == other.number


def test_a_campaign_without_a_number_says_so_instead_of_calling(admin_client):
    campaign = CampaignFactory()
    page = admin_client.post(_url(campaign), {"_form_submitted": "on", "caller": "+12025550100"}, follow=True).content.decode()
    assert "no active tracking number" in page and not Call.objects.exists()


def test_the_figures_leave_the_test_call_out(admin_client, campaign, number):
    _real_call(number)
    if connection.vendor == "postgresql":
        report_rollups_refresh()
        assert CallRollupDirty.objects.count() == 0
    _post(admin_client, _url(campaign))
    assert Call.objects.count() == 2
    if connection.vendor == "postgresql":
        assert CallRollupDirty.objects.count() == 0  # the test call's writes mark no day: the rolled-up day stays
    period = reports.period_for("7d")
    summary = reports.report_summary(scope=Scope(), period=period).current
    assert (summary.calls, summary.answered, summary.converted, summary.revenue) == (1, 1, 1, Decimal("40.00"))
    api = admin_client.get("/api/v1/reports/summary?range=7d").json()["current"]
    assert api["calls"] == 1 and Decimal(api["revenue"]) == Decimal("40.00")
    by_handler = reports.report_breakdown(scope=Scope(), period=period, by="handler")
    assert [r.totals.calls for r in by_handler] == [1]
    report_rollups_refresh(all_days=True)
    assert reports.report_summary(scope=Scope(), period=period).current.calls == 1


def test_the_test_call_counts_toward_no_period_cap(admin_client, campaign, number):
    desk = campaign.handlers.get()
    _post(admin_client, _url(campaign))
    assert Call.objects.get().handler == desk
    load = handler_loads(options=[handler_option(desk.pk)], at=Call.objects.get().started_at).get(desk.pk)
    assert (load.hour, load.day, load.month, load.total, load.in_progress) == (0, 0, 0, 0, 0)
    _real_call(number)
    cap_counters_fold()
    load = handler_loads(options=[handler_option(desk.pk)], at=Call.objects.latest("started_at").started_at).get(desk.pk)
    assert (load.day, load.total) == (1, 1)


def test_a_rule_that_converts_every_call_does_not_convert_the_test_call(admin_client, campaign, number):
    _post(admin_client, _url(campaign))
    call = Call.objects.get()
    assert not call.converted and not call.revenue_converted and not call.payout_converted
    assert (call.revenue, call.payout, call.conversion_status) == (Decimal("0"), Decimal("0"), "not_converted")
    assert call.conversion_reason == conversions.TEST_CALL
    with pytest.raises(conversions.ConversionRefused, match="test call"):
        conversions.call_convert(call=call, source="api")
    assert _real_call(number).revenue == Decimal("40.00")  # the same rule converts a real call


def test_no_webhook_goes_out_for_a_test_call_unless_asked(admin_client, campaign, number, django_capture_on_commit_callbacks, settings):
    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "sync": False}
    WebhookFactory(campaign=campaign, events=["call.started", "call.answered", "call.completed"])
    with django_capture_on_commit_callbacks(execute=True):
        _post(admin_client, _url(campaign))
    assert Call.objects.get().is_test and not WebhookDelivery.objects.exists()
    with django_capture_on_commit_callbacks(execute=True):
        _post(admin_client, _url(campaign), send_webhooks="on")
    asked = Call.objects.get(decision__test__webhooks=True)
    assert asked.is_test and set(WebhookDelivery.objects.filter(call=asked).values_list("event", flat=True)) == {
        "call.started", "call.answered", "call.completed"}
    assert "webhooks sent" in admin_client.get(reverse("admin:tracking_call_change", args=[asked.pk])).content.decode()
    assert all(json.loads(d.body)["test_call"] == "true" for d in WebhookDelivery.objects.filter(call=asked))  # the receiver can tell


def test_the_call_log_filters_test_calls_and_the_export_and_api_show_the_flag(admin_client, campaign, number):
    real = _real_call(number)
    _post(admin_client, _url(campaign))
    test = Call.objects.get(is_test=True)
    log = reverse("admin:tracking_call_changelist")
    only = admin_client.get(log, {"test": "only"}).content.decode()
    assert reverse("admin:tracking_call_change", args=[test.pk]) in only
    assert reverse("admin:tracking_call_change", args=[real.pk]) not in only and "TEST CALL" in only
    excluded = admin_client.get(log, {"test": "exclude"}).content.decode()
    assert reverse("admin:tracking_call_change", args=[real.pk]) in excluded
    assert reverse("admin:tracking_call_change", args=[test.pk]) not in excluded
    assert admin_client.get(log, {"test": "maybe"}).status_code in (200, 302)  # an unknown value: the admin's "?e=1", never a 500
    assert admin_client.get("/api/v1/calls/", {"is_test": "true"}).json()["results"][0]["id"] == test.pk
    assert admin_client.get(f"/api/v1/calls/{test.pk}/").json()["is_test"] is True
    assert admin_client.get(f"/api/v1/calls/{real.pk}/").json()["is_test"] is False


def test_the_keys_pressed_and_the_callers_state_reach_routing(admin_client, campaign, number):
    campaign.ivr_prompt = "Sales 1, service 2."
    campaign.save()
    texas = HandlerFactory(name="Texas desk", priority=0, tag_criteria=[{"key": "caller_state", "op": "equals", "value": "TX"}])
    CampaignHandlerFactory(campaign=campaign, handler=texas)
    service = HandlerFactory(name="Service desk")
    IVROption.objects.create(campaign=campaign, digit="1", tag_key="department", tag_value="sales")
    IVROption.objects.create(campaign=campaign, digit="2", action="handler", handler=service)
    _post(admin_client, _url(campaign), digits="2", from_state="CO")
    by_key = Call.objects.get()
    assert by_key.handler == service and by_key.caller_state == "CO"
    _post(admin_client, _url(campaign), digits="1", from_state="TX", from_zip="73301", from_city="Austin")
    texan = Call.objects.latest("id")
    assert (texan.caller_state, texan.caller_zip, texan.caller_city.lower()) == ("TX", "73301", "austin")
    assert texan.handler == texas and texan.tags["department"] == "sales"


def test_the_callers_name_and_verification_go_with_the_test_call(admin_client, campaign, number):
    """They go as Twilio sends them (CallerName, StirVerstat), signed, and the call keeps them (the campaign scores no spam:
    the call is routed)."""
    response = _post(admin_client, _url(campaign), caller_name="SMITH JOHN", stir_verstat="TN-Validation-Failed-A", from_state="CO")
    assert response.status_code == 302
    call = Call.objects.get()
    assert call.is_test and call.caller_state == "CO" and call.handler is not None
    assert (call.attestation, call.caller_name) == ("failed", "SMITH JOHN")
    _, transcript = test_call_place(to=number.number, caller_name="DOE JANE", stir_verstat="No-TN-Validation")
    incoming = next(line for line in transcript.splitlines() if line.startswith("-> POST /voice/incoming"))
    assert "'CallerName': 'DOE JANE'" in incoming and "'StirVerstat': 'No-TN-Validation'" in incoming
    refused = _post(admin_client, _url(campaign), stir_verstat="Trust-me")
    assert refused.status_code == 200 and "Select a valid choice" in refused.content.decode()
    assert Call.objects.count() == 2


def test_the_clock_decides_business_hours(admin_client, campaign, number):
    desk = campaign.handlers.get()
    desk.always_open, desk.timezone, desk.business_hours = False, "America/New_York", {"mon": ["09:00-17:00"]}
    desk.save()
    _post(admin_client, _url(campaign), clock="2026-12-07T10:30")  # a Monday, in the admin's time zone
    open_call = Call.objects.get()
    assert open_call.handler == desk and open_call.test_clock is not None
    _post(admin_client, _url(campaign), clock="2026-12-07T23:30")
    closed = Call.objects.latest("id")
    assert closed.handler is None and any(s["reason"] == "closed" for s in closed.decision.get("skipped", []))
    assert closed.test_clock == datetime(2026, 12, 7, 23, 30, tzinfo=NY)  # read in the admin's time zone (New York here)


def test_a_forged_or_foreign_test_marker_leaves_the_call_a_real_one(client, number, settings):
    """A marker signed with another key, or made for another CallSid, is ignored: the call is routed as the real call it is."""
    settings.CALLTRACK_VALIDATE_TWILIO_SIGNATURE = False
    forged = call_test_marker(call_sid="CA" + "1" * 32, options=TestCallOptions())
    settings.SECRET_KEY = "another-" + settings.SECRET_KEY
    mine = call_test_marker(call_sid="CA" + "1" * 32, options=TestCallOptions())
    for sid, marker in (("CA" + "1" * 32, forged), ("CA" + "2" * 32, mine), ("CA" + "3" * 32, "junk\x00")):
        client.post("/voice/incoming", {"CallSid": sid, "From": "+13035550123", "To": number.number, TEST_CALL_PARAM: marker})
    assert list(Call.objects.order_by("call_sid").values_list("is_test", flat=True)) == [False, False, False]
    client.post("/voice/incoming", {"CallSid": "CA" + "4" * 32, "From": "+13035550123", "To": number.number,
                                    TEST_CALL_PARAM: call_test_marker(call_sid="CA" + "4" * 32, options=TestCallOptions())})
    assert Call.objects.get(call_sid="CA" + "4" * 32).is_test


def test_simulate_call_marks_its_call_as_a_test(number):
    call_command("simulate_call", to=number.number, caller="+13035550123", test=True, from_state="CO", stdout=io.StringIO())
    call = Call.objects.get()
    assert call.is_test and call.caller_state == "CO" and not call.converted


def test_a_test_call_whose_routing_fails_is_recorded_by_the_failsafe_as_a_test(client, settings):
    settings.CALLTRACK_VALIDATE_TWILIO_SIGNATURE = False
    loose = TrackingNumberFactory(campaign=None)  # no campaign: routing fails, the fail-safe records the call
    sid = "CA" + "5" * 32
    marker = call_test_marker(call_sid=sid, options=TestCallOptions(send_webhooks=True))
    client.post("/voice/incoming", {"CallSid": sid, "From": "+13035550123", "To": loose.number, TEST_CALL_PARAM: marker})
    call = Call.objects.get()
    assert call.used_failsafe and call.is_test and call.test_sends_webhooks


def test_simulate_call_refuses_test_options_without_test_and_a_bad_clock(number):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="add --test"):
        call_command("simulate_call", to=number.number, caller="+13035550123", clock="2026-12-07 10:00", stdout=io.StringIO())
    with pytest.raises(CommandError, match="--clock must be"):
        call_command("simulate_call", to=number.number, caller="+13035550123", test=True, clock="tomorrow", stdout=io.StringIO())
    assert not Call.objects.exists()


def test_the_callers_identity_reaches_the_spam_rules(admin_client, campaign, number):
    campaign.spam_action = "reject"
    campaign.save()
    _post(admin_client, _url(campaign), stir_verstat="TN-Validation-Failed-A", caller_name="SPAM LIKELY")
    call = Call.objects.get()
    assert (call.is_test, call.attestation, call.caller_name, call.status) == (True, "failed", "SPAM LIKELY", "rejected")
    # 120 from the identity (failed attestation, a spam label); the number has no source or label, so the
    # never-published rule adds its 30.
    assert call.reject_reason.startswith("spam: score 150: the caller ID's STIR/SHAKEN verification failed; the caller name 'SPAM LIKELY'")
