"""The admin writes sources, handlers and campaigns through the same services as the API."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests.tracking.factories import CampaignFactory, CampaignHandlerFactory, HandlerFactory, SourceFactory
from tracking.models import Campaign, Handler, Source

pytestmark = pytest.mark.django_db


def test_adding_a_source_in_the_admin_goes_through_the_service(admin_client):
    response = admin_client.post(reverse("admin:tracking_source_add"), {
        "name": "Radio spots", "source_id": "", "first_name": "", "last_name": "", "company": "KQED",
        "static_number_cap": "", "notes": "",
    })
    assert response.status_code == 302, response.content.decode()[:2000]
    source = Source.objects.get(name="Radio spots")
    assert source.source_id  # derived from the name when blank, as the API's create does
    assert response["Location"] == reverse("admin:tracking_source_changelist")


def test_deleting_handlers_in_bulk_reloads_their_campaigns_routing(admin_client):
    link = CampaignHandlerFactory()
    campaign, handler = link.campaign, link.handler
    other = HandlerFactory()
    before = Campaign.objects.get(pk=campaign.pk).config_version  # the link's insert has bumped it already
    response = admin_client.post(reverse("admin:tracking_handler_changelist"), {
        "action": "delete_selected", "_selected_action": [handler.pk, other.pk], "post": "yes",
    })
    assert response.status_code == 302
    assert not Handler.objects.filter(pk__in=[handler.pk, other.pk]).exists()
    assert Campaign.objects.get(pk=campaign.pk).config_version == before + 1


def test_deleting_a_source_and_a_campaign_in_the_admin(admin_client):
    source, campaign = SourceFactory(), CampaignFactory()
    response = admin_client.post(reverse("admin:tracking_source_delete", args=[source.pk]), {"post": "yes"})
    assert response.status_code == 302 and not Source.objects.filter(pk=source.pk).exists()
    response = admin_client.post(reverse("admin:tracking_campaign_delete", args=[campaign.pk]), {"post": "yes"})
    assert response.status_code == 302 and not Campaign.objects.filter(pk=campaign.pk).exists()
