"""The conversion rules' API: staff only, validated like the admin, every change in the money audit trail."""

from __future__ import annotations

import pytest

from tests.tracking.factories import CampaignFactory
from tracking.models import Campaign, ConversionRule

pytestmark = pytest.mark.django_db


def test_staff_create_a_rule_paying_a_repeat_caller_twice_and_read_its_history(staff):
    campaign = CampaignFactory()
    before = Campaign.objects.get(pk=campaign.pk).config_version
    response = staff.post("/api/v1/conversion-rules/", {
        "campaign": campaign.pk, "kind": "timer", "min_duration": 90, "revenue": "40.00", "payout": "15.00",
        "dedupe_window": 24, "dedupe_max_payable": 2}, format="json")
    assert response.status_code == 201, response.content
    rule = ConversionRule.objects.get()
    assert (rule.dedupe_window, rule.dedupe_max_payable, str(rule.revenue)) == (24, 2, "40.00")
    assert Campaign.objects.get(pk=campaign.pk).config_version > before  # routing reloads the campaign's rules
    changed = staff.patch(f"/api/v1/conversion-rules/{rule.pk}/", {"payout": "20.00"}, format="json")
    assert changed.status_code == 200 and changed.json()["payout"] == "20.00"
    history = staff.get(f"/api/v1/conversion-rules/{rule.pk}/history/").json()
    assert history and history[0]["origin"] == "api"
    assert staff.get("/api/v1/conversion-rules/", {"campaign": campaign.pk}).json()["results"][0]["id"] == rule.pk


def test_a_count_without_a_window_is_refused_by_field(staff):
    campaign = CampaignFactory()
    response = staff.post("/api/v1/conversion-rules/", {"campaign": campaign.pk, "dedupe_max_payable": 3}, format="json")
    assert response.status_code == 400
    assert "dedupe_max_payable" in response.json() or "dedupe_window" in response.json()
    assert not ConversionRule.objects.exists()


def test_collaborators_cannot_read_or_write_the_rules(source_collaborator, handler_collaborator):
    campaign = CampaignFactory()
    for client in (source_collaborator, handler_collaborator):
        assert client.get("/api/v1/conversion-rules/").status_code == 403
        assert client.post("/api/v1/conversion-rules/", {"campaign": campaign.pk}, format="json").status_code == 403
