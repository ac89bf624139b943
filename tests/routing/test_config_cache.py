"""The per-process cache of campaign routing configurations, keyed by Campaign.config_version (bumped by database
triggers: tests/tracking/test_config_version.py checks each table)."""

from __future__ import annotations

import pytest
from django.contrib.admin.sites import site
from django.test import RequestFactory

from calltrack.numbers.admin import ReceivingNumberAdmin
from calltrack.numbers.models import ReceivingNumber
from routing import services
from tests.numbers.factories import TrackingNumberFactory
from tests.tracking.factories import CampaignFactory, CampaignHandlerFactory, HandlerFactory, UserFactory, WebhookFactory
from tracking.admin import HandlerAdmin, WebhookAdmin
from tracking.models import AttemptKind, Call, Campaign, Handler, RoutingStrategy, Webhook

pytestmark = pytest.mark.django_db


def incoming(twilio, tn, sid, caller="+14155550100"):
    response = twilio.post("/voice/incoming", {"CallSid": sid, "From": caller, "To": tn.number})
    assert response.status_code == 200, response.content
    return Call.objects.get(call_sid=sid)


def version(campaign) -> int:
    return Campaign.objects.values_list("config_version", flat=True).get(pk=campaign.pk)


@pytest.fixture
def setup():
    campaign = CampaignFactory(routing_strategy="sequential")
    first = CampaignHandlerFactory(campaign=campaign, position=0, handler=HandlerFactory(name="First")).handler
    second = CampaignHandlerFactory(campaign=campaign, position=1, handler=HandlerFactory(name="Second")).handler
    return TrackingNumberFactory(campaign=campaign), first, second


def test_a_change_made_with_a_queryset_update_is_seen_by_the_next_call(twilio, setup):
    tn, first, second = setup
    assert incoming(twilio, tn, "CA1").attempts.get().handler == first
    assert incoming(twilio, tn, "CA2").attempts.get().handler == first  # from the cache
    Handler.objects.filter(pk=first.pk).update(enabled=False)  # no service, no save(): the trigger bumps
    assert incoming(twilio, tn, "CA3").attempts.get().handler == second


def test_calls_attempts_and_round_robin_never_bump_the_version(twilio, setup):
    """The voice path writes calls, attempts, cap deltas and the round-robin cursor: none of it is configuration,
    so the campaign's cached configuration survives every call."""
    tn, first, _ = setup
    Campaign.objects.filter(pk=tn.campaign_id).update(routing_strategy=RoutingStrategy.ROUND_ROBIN)
    start = version(tn.campaign)
    incoming(twilio, tn, "CA1")
    done = {"CallSid": "CA1", "CallStatus": "completed", "CallDuration": "30", "SequenceNumber": "2"}
    assert twilio.post("/voice/status", done).status_code == 200
    incoming(twilio, tn, "CA2")
    assert Campaign.objects.get(pk=tn.campaign_id).rr_position == 2
    assert Call.objects.filter(campaign=tn.campaign).count() == 2
    assert version(tn.campaign) == start


def test_admin_saves_and_deletes_bump_the_campaigns_concerned(setup):
    tn, first, second = setup
    campaign = tn.campaign
    request = RequestFactory().post("/admin/")
    request.user = UserFactory(is_staff=True, is_superuser=True)
    start = version(campaign)

    HandlerAdmin(Handler, site).save_model(request, first, None, True)
    assert version(campaign) == start + 1
    ReceivingNumberAdmin(ReceivingNumber, site).save_model(request, second.receiving_number, None, True)
    assert version(campaign) == start + 2
    hook = WebhookFactory(campaign=campaign, events=["call.routed"], url="https://crm.example.com/hook")
    assert version(campaign) == start + 3  # the factory's insert
    WebhookAdmin(Webhook, site).save_model(request, hook, None, True)
    assert version(campaign) == start + 4
    WebhookAdmin(Webhook, site).delete_model(request, hook)
    assert version(campaign) == start + 5
    HandlerAdmin(Handler, site).delete_model(request, second)  # the cascade deletes its place in the campaign
    assert version(campaign) == start + 6
    HandlerAdmin(Handler, site).delete_queryset(request, Handler.objects.filter(pk=first.pk))
    assert version(campaign) == start + 7


def _change_form_data(response) -> dict:
    """The POST data of an admin change page as shown (the form and every inline formset, unchanged)."""
    forms = [response.context["adminform"].form]
    for inline in response.context["inline_admin_formsets"]:
        forms += [inline.formset.management_form, *inline.formset.forms]
    data: dict = {}
    for form in forms:
        for name in form.fields:
            bound = form[name]
            value = bound.value()  # prepared already (BoundField.value applies the field's prepare_value)
            if isinstance(value, bool) or value is None:
                if value:
                    data[bound.html_name] = "on"
                continue
            data[bound.html_name] = [str(v) for v in value] if isinstance(value, (list, tuple)) else str(value)
    return data


def test_campaign_admin_writes_its_inlines_through_the_services_and_bumps_once_per_row(setup, admin_client):
    from django.urls import reverse

    from tracking.models import IVROption

    tn, first, second = setup
    campaign = tn.campaign
    url = reverse("admin:tracking_campaign_change", args=[campaign.pk])
    data = _change_form_data(admin_client.get(url))
    data.update({
        "ivr_options-TOTAL_FORMS": "1", "ivr_options-0-digit": "1", "ivr_options-0-label": "Sales",
        "ivr_options-0-action": "handler", "ivr_options-0-handler": str(first.pk), "ivr_options-0-campaign": str(campaign.pk),
    })
    start = version(campaign)
    response = admin_client.post(url, data)
    assert response.status_code == 302, response.context and [f.errors for f in response.context["inline_admin_formsets"][1].formset.forms]
    option = IVROption.objects.get(campaign=campaign)
    assert (option.digit, option.handler_id) == ("1", first.pk)
    assert version(campaign) == start + 2  # the campaign's own save, then the new IVR option's

    data = _change_form_data(admin_client.get(url))
    data["ivr_options-0-DELETE"] = "on"
    response = admin_client.post(url, data)
    assert response.status_code == 302
    assert not IVROption.objects.filter(campaign=campaign).exists()
    assert version(campaign) == start + 4


def test_a_stale_configuration_cannot_overbook_a_cap(twilio, setup):
    """The cache says the cap is 2; the row says 1: the lock's re-read wins. (A call that read the campaign's
    version just before the change committed plans with the cached configuration: simulated by putting the
    version back.)"""
    tn, first, second = setup
    Handler.objects.filter(pk__in=[first.pk, second.pk]).update(concurrency_cap=2)
    held = incoming(twilio, tn, "CA1", caller="+14155550101")  # holds a slot of First
    assert held.attempts.get().handler == first
    cached = version(tn.campaign)
    Handler.objects.filter(pk=first.pk).update(concurrency_cap=1)
    Campaign.objects.filter(pk=tn.campaign_id).update(config_version=cached)  # the cached plan still says 2
    call = incoming(twilio, tn, "CA2", caller="+14155550102")
    attempt = call.attempts.get(kind=AttemptKind.HANDLER)
    assert attempt.handler == second
    skipped = [s for s in call.decision["skipped"] if s["handler_id"] == first.pk]
    assert skipped and "concurrency cap 1 reached" in skipped[0]["detail"] and "under lock" in skipped[0]["detail"]


def test_webhook_events_are_part_of_the_cached_configuration(twilio, setup, django_capture_on_commit_callbacks):
    tn, _, _ = setup
    with django_capture_on_commit_callbacks() as callbacks:
        incoming(twilio, tn, "CA1")
    assert callbacks == []  # nobody listens to call.started / call.routed: no after-commit work
    WebhookFactory(campaign=tn.campaign, events=["call.routed"])
    with django_capture_on_commit_callbacks() as callbacks:
        incoming(twilio, tn, "CA2")
    assert len(callbacks) == 1
    assert services.campaign_config(Campaign.objects.get(pk=tn.campaign_id)).webhook_events == frozenset({"call.routed"})


def test_importing_receiving_number_updates_bumps_the_campaigns_dialling_them(setup):
    import io

    from calltrack.numbers.services.importing import numbers_import

    tn, first, _ = setup
    start = version(tn.campaign)
    line = first.receiving_number
    numbers_import(file=io.StringIO(f"number,label,ring_timeout\n{line.number},{line.label},45\n"), receiving=True, update=True)
    line.refresh_from_db()
    assert line.ring_timeout == 45
    assert version(tn.campaign) == start + 1


def test_a_completed_call_skips_the_webhook_lookup_when_no_webhook_listens(twilio, setup, django_capture_on_commit_callbacks):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from tracking.models import WebhookDelivery

    tn, _, _ = setup
    WebhookFactory(campaign=tn.campaign, events=["call.started"])
    with django_capture_on_commit_callbacks(execute=True):
        incoming(twilio, tn, "CA1")
    done = {"CallSid": "CA1", "CallStatus": "completed", "CallDuration": "30", "SequenceNumber": "2"}
    with CaptureQueriesContext(connection) as captured, django_capture_on_commit_callbacks(execute=True):
        assert twilio.post("/voice/status", done).status_code == 200
    assert Call.objects.get(call_sid="CA1").conversion_evaluated_at is not None  # the conversion rules still ran
    assert not [q for q in captured.captured_queries if Webhook._meta.db_table + '"' in q["sql"].split("FROM")[-1]]
    assert list(WebhookDelivery.objects.values_list("event", flat=True)) == ["call.started"]
