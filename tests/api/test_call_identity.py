"""The caller's identity (issue 28) where people read calls: the API (both collaborators see it, like the caller's
number), the call log's filter, the call page and the CSV export."""

from __future__ import annotations

import csv
import io

import pytest
from django.urls import reverse

from tests.tracking.factories import CallFactory
from tracking.models import Call


@pytest.fixture
def identified(world):
    Call.objects.filter(pk=world.call_mine.pk).update(attestation="failed", tags={"caller_name": "SPAM LIKELY", "attestation": "failed"})
    Call.objects.filter(pk=world.call_other.pk).update(attestation="passed_a", tags={"caller_name": "JANE DOE", "attestation": "passed_a"})
    return world


def test_the_api_gives_the_callers_name_and_attestation_and_filters_by_attestation(staff, identified):
    rows = {r["id"]: r for r in staff.get("/api/v1/calls/").json()["results"]}
    mine = rows[identified.call_mine.pk]
    assert (mine["caller_name"], mine["attestation"]) == ("SPAM LIKELY", "failed")
    found = staff.get("/api/v1/calls/", {"attestation": "passed_a"}).json()["results"]
    assert [r["id"] for r in found] == [identified.call_other.pk]
    assert staff.get("/api/v1/calls/", {"attestation": "maybe"}).status_code == 400


@pytest.mark.parametrize("kind", ["source", "handler"])
def test_both_collaborators_see_the_callers_identity_like_the_callers_number(kind, request, identified):
    client = request.getfixturevalue(f"{kind}_collaborator")
    row = next(r for r in client.get("/api/v1/calls/").json()["results"] if r["id"] == identified.call_mine.pk)
    assert (row["caller_name"], row["attestation"]) == ("SPAM LIKELY", "failed")
    assert row["tags"]["caller_name"] == "SPAM LIKELY"


def test_the_call_log_filters_by_attestation_and_the_call_page_and_export_show_the_identity(admin_client):
    failed = CallFactory(attestation="failed", tags={"caller_name": "SCAM", "attestation": "failed"})
    passed = CallFactory(attestation="passed_b")
    log = admin_client.get(reverse("admin:tracking_call_changelist"), {"attestation__exact": "failed"})
    assert {c.pk for c in log.context["cl"].result_list} == {failed.pk}
    assert 'title="SCAM' in log.content.decode()  # the caller column names the caller
    page = admin_client.get(reverse("admin:tracking_call_change", args=[failed.pk])).content.decode()
    assert 'id="call-caller-name">SCAM<' in page and "Verification failed" in page
    response = admin_client.get(reverse("admin:tracking_call_export"))
    rows = {r["call_id"]: r for r in csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode()))}
    assert rows[str(failed.pk)]["attestation"] == "failed" and rows[str(passed.pk)]["attestation"] == "passed_b"
    assert rows[str(failed.pk)]["tag:caller_name"] == "SCAM"


def test_a_campaigns_spam_rules_are_set_and_checked_through_the_api(staff, db):
    from tests.tracking.factories import CampaignFactory
    from tracking.models import Campaign

    campaign = CampaignFactory()
    url = f"/api/v1/campaigns/{campaign.pk}/"
    bad = staff.patch(url, {"spam_action": "reject", "spam_rules": {"weights": {"caller_name": "lots"}, "repeat_calls": -1}}, format="json")
    assert bad.status_code == 400
    assert "weights.caller_name: a whole number from 0 to 1000." in str(bad.json())
    before = Campaign.objects.get(pk=campaign.pk).config_version
    good = staff.patch(url, {"spam_action": "challenge", "spam_threshold": 40, "spam_rules": {"repeat_calls": 3, "repeat_minutes": 5}},
                       format="json")
    assert good.status_code == 200, good.content
    assert (good.json()["spam_action"], good.json()["spam_threshold"], good.json()["spam_rules"]) == (
        "challenge", 40, {"repeat_calls": 3, "repeat_minutes": 5})
    assert Campaign.objects.get(pk=campaign.pk).config_version > before  # routing's cached configuration follows


def test_the_campaign_page_has_the_spam_rules(admin_client, db):
    from tests.tracking.factories import CampaignFactory

    campaign = CampaignFactory(spam_action="tag")
    page = admin_client.get(reverse("admin:tracking_campaign_change", args=[campaign.pk])).content.decode()
    assert "Above the spam threshold" in page and "Spam rules (JSON)" in page
    response = admin_client.post(reverse("admin:tracking_campaign_change", args=[campaign.pk]), {"spam_rules": '{"nope": 1}'})
    assert response.status_code == 200  # the form again, not saved
