"""Webhooks: a test delivery from the admin, the secret never shown again after creation; the "Test call"
button of the campaign and tracking number pages plays a call through the real voice webhooks."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests.console.helpers import admin_post_data
from tests.numbers.factories import TrackingNumberFactory
from tests.tracking.factories import CallFactory, CampaignFactory, CampaignHandlerFactory, HandlerFactory, WebhookFactory
from tests.tracking.receiver import receiver
from tracking.models import Call, Webhook, WebhookDelivery

pytestmark = pytest.mark.django_db


def test_send_a_test_delivery_posts_the_campaigns_latest_call_and_shows_the_answer(admin_client, settings):
    settings.CALLTRACK_OUTBOUND_ALLOW = ["127.0.0.1"]
    with receiver((200, 0)) as rx:
        hook = WebhookFactory(url=rx.url("/crm?c=[call_id]"), events=["call.completed"])
        call = CallFactory(campaign=hook.campaign)
        url = reverse("admin:tracking_webhook_send_test_delivery", args=[hook.pk])
        page = admin_client.get(url, follow=True).content.decode()
    (request,) = rx.requests
    assert request.path == f"/crm?c={call.pk}" and request.headers["X-Calltrack-Event"] == "test"
    delivery = WebhookDelivery.objects.get(webhook=hook)
    assert delivery.event == "test" and delivery.status == "delivered" and delivery.last_status_code == 200
    assert "test delivery delivered (200)" in page


def test_a_failed_test_delivery_is_not_retried_and_says_so(admin_client, settings):
    settings.CALLTRACK_OUTBOUND_ALLOW = ["127.0.0.1"]
    with receiver((503, 0)) as rx:
        hook = WebhookFactory(url=rx.url(), events=["call.completed"])
        CallFactory(campaign=hook.campaign)
        admin_client.post(reverse("admin:tracking_webhook_changelist"), {"action": "send_test_deliveries", "_selected_action": [hook.pk]})
    delivery = WebhookDelivery.objects.get(webhook=hook)
    assert delivery.status == "failed" and delivery.next_attempt_at is None


def test_a_test_delivery_without_any_call_says_to_place_a_test_call_first(admin_client):
    hook = WebhookFactory(events=["call.completed"])
    page = admin_client.get(reverse("admin:tracking_webhook_send_test_delivery", args=[hook.pk]), follow=True).content.decode()
    assert "place a test call first" in page and not WebhookDelivery.objects.exists()


def test_the_webhook_secret_is_not_shown_after_creation_and_a_blank_field_keeps_it(admin_client, settings):
    settings.CALLTRACK_OUTBOUND_ALLOW = ["127.0.0.1"]  # the factory's receiver address
    hook = WebhookFactory(events=["call.completed"])
    secret = Webhook.objects.get(pk=hook.pk).secret
    url = reverse("admin:tracking_webhook_change", args=[hook.pk])
    response = admin_client.get(url)
    page = response.content.decode()
    assert secret not in page and f"…{secret[-4:]}" in page
    data = admin_post_data(response)
    data["name"] = "Renamed"
    response = admin_client.post(url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    hook.refresh_from_db()
    assert hook.name == "Renamed" and hook.secret == secret
    data["secret"] = "a-new-shared-secret-for-the-crm"
    changed = admin_client.post(url, data, follow=True).content.decode()
    hook.refresh_from_db()
    assert hook.secret == "a-new-shared-secret-for-the-crm"
    # The new secret is shown once after saving, with a copy button; the next page only its end.
    assert '<code id="ct-new-secret">a-new-shared-secret-for-the-crm</code>' in changed and "data-copy-target" in changed
    assert "a-new-shared-secret-for-the-crm" not in admin_client.get(url).content.decode()


def test_a_new_webhooks_secret_is_shown_once_after_saving(admin_client, settings):
    settings.CALLTRACK_OUTBOUND_ALLOW = ["127.0.0.1"]
    campaign = CampaignFactory()
    add = reverse("admin:tracking_webhook_add")
    data = admin_post_data(admin_client.get(add))
    data.update({"name": "CRM", "campaign": campaign.pk, "url": "http://127.0.0.1:9/hook", "events": ["call.completed"]})
    response = admin_client.post(add, data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    page = admin_client.get(response["Location"]).content.decode()
    hook = Webhook.objects.get(name="CRM")
    assert f'<code id="ct-new-secret">{hook.secret}</code>' in page
    assert hook.secret not in admin_client.get(reverse("admin:tracking_webhook_change", args=[hook.pk])).content.decode()


@pytest.fixture
def answering_campaign(settings):
    settings.CALLTRACK_PUBLIC_BASE_URL = "http://testserver"
    campaign = CampaignFactory(name="Roof repairs")
    CampaignHandlerFactory(campaign=campaign, handler=HandlerFactory(name="Denver desk"))
    return campaign, TrackingNumberFactory(campaign=campaign)


def test_the_campaigns_test_call_plays_a_call_and_opens_its_timeline(admin_client, answering_campaign):
    campaign, number = answering_campaign
    url = reverse("admin:tracking_campaign_test_call", args=[campaign.pk])
    assert admin_client.get(url).status_code == 200 and not Call.objects.exists()  # GET: the form only
    response = admin_client.post(url, {"_form_submitted": "on", "caller": "+12025550100"})
    call = Call.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("admin:tracking_call_change", args=[call.pk])
    assert call.called_number == number.number and call.status == "completed" and call.handler.name == "Denver desk" and call.is_test
    page = admin_client.get(response["Location"]).content.decode()
    assert "Test call to" in page and 'id="call-timeline"' in page and "Denver desk answered" in page


def test_the_tracking_numbers_test_call_plays_a_call_to_that_number(admin_client, answering_campaign):
    _, number = answering_campaign
    response = admin_client.post(reverse("admin:numbers_trackingnumber_test_call", args=[number.pk]), {"_form_submitted": "on", "caller": "+12025550100"})
    assert response.status_code == 302
    assert Call.objects.get().called_number == number.number


def test_a_campaign_without_a_number_says_so_instead_of_calling(admin_client):
    campaign = CampaignFactory()
    page = admin_client.post(reverse("admin:tracking_campaign_test_call", args=[campaign.pk]), {"_form_submitted": "on", "caller": "+12025550100"},
                             follow=True).content.decode()
    assert "no active tracking number" in page and not Call.objects.exists()
