"""Tagging hours: calls are tagged by when they arrive, from account-wide and campaign schedules."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse
from lxml import etree
from rest_framework.test import APIClient

from routing.services.config import campaign_config_cache_clear
from routing.tagging import HoursTag, hours_tags
from tests.numbers.factories import TrackingNumberFactory
from tests.routing.test_voice_flow import Flow, dialled, handler
from tests.tracking.factories import CampaignFactory
from tracking.models import Call, TaggingHours
from tracking.services.tagging import tagging_hours_create, tagging_hours_update

WEEKDAYS_9_5 = {d: ["09:00-17:00"] for d in ("mon", "tue", "wed", "thu", "fri")}
# 2026-11-27 is a Friday; 2026-11-28 a Saturday. Denver is UTC-7 in November.
FRIDAY_10_DENVER = dt.datetime(2026, 11, 27, 17, 0, tzinfo=dt.UTC)
FRIDAY_20_DENVER = dt.datetime(2026, 11, 28, 3, 0, tzinfo=dt.UTC)
SATURDAY_11_DENVER = dt.datetime(2026, 11, 28, 18, 0, tzinfo=dt.UTC)


def test_outside_schedule_tags_calls_after_hours_in_its_own_zone():
    after = HoursTag("After hours", "hours", "after_hours", "America/Denver", WEEKDAYS_9_5, inside=False)
    assert hours_tags([after], FRIDAY_10_DENVER).tags == {}
    tagged = hours_tags([after], FRIDAY_20_DENVER)
    assert tagged.tags == {"hours": "after_hours"}
    assert tagged.notes == ["hours=after_hours: arrived Fri 20:00 America/Denver, outside account tagging hours 'After hours'"]


def test_a_campaigns_schedule_wins_over_the_account_for_the_same_tag():
    account = HoursTag("After hours", "hours", "after_hours", "America/Denver", WEEKDAYS_9_5, inside=False)
    weekend = HoursTag("Weekend", "hours", "weekend", "America/Denver", {"sat": ["00:00-24:00"], "sun": ["00:00-24:00"]},
                       campaign_wide=True)
    assert hours_tags([weekend, account], SATURDAY_11_DENVER).tags == {"hours": "weekend"}
    assert hours_tags([weekend, account], FRIDAY_20_DENVER).tags == {"hours": "after_hours"}



@pytest.fixture
def campaign(db):
    return CampaignFactory(name="Plumbing", company_phone="+13035550190")


@pytest.fixture
def flow(twilio, campaign):
    return Flow(twilio, TrackingNumberFactory(campaign=campaign))


@pytest.mark.django_db
def test_an_after_hours_call_is_tagged_and_routed_by_that_tag(flow, campaign, time_machine, assert_valid_twiml):
    time_machine.move_to(FRIDAY_20_DENVER, tick=False)
    tagging_hours_create(fields={"name": "After hours", "timezone": "America/Denver", "hours": WEEKDAYS_9_5,
                                 "match": "outside", "tag_key": "hours", "tag_value": "after_hours"})
    handler(campaign, 1, name="Office", tag_criteria=[{"key": "hours", "op": "not_one_of", "value": ["after_hours"]}])
    night = handler(campaign, 2, name="Night line", tag_criteria=[{"key": "hours", "op": "equals", "value": "after_hours"}])
    doc = flow.start()
    assert_valid_twiml(etree.tostring(doc))
    assert dialled(doc) == [night.receiving_number.number]
    call = Call.objects.get()
    assert call.tags["hours"] == "after_hours"
    event = call.events.get(kind="call.tagged")
    assert "outside account tagging hours 'After hours'" in event.message
    assert call.decision["skipped"][0]["reason"] == "tag_mismatch"


@pytest.mark.django_db
def test_a_schedule_change_reaches_the_cached_configuration(flow, campaign, time_machine):
    time_machine.move_to(FRIDAY_10_DENVER, tick=False)
    handler(campaign)
    schedule = tagging_hours_create(fields={"name": "Lunch", "campaign": campaign, "timezone": "America/Denver",
                                            "hours": {"fri": ["12:00-13:00"]}, "tag_key": "hours", "tag_value": "lunch"})
    flow.start()
    assert "hours" not in Call.objects.get().tags
    tagging_hours_update(tagging_hours=schedule, fields={"hours": {"fri": ["09:30-13:00"]}})
    Flow(flow.twilio, flow.tn, sid="CA101").start()
    assert Call.objects.get(call_sid="CA101").tags["hours"] == "lunch"


@pytest.mark.django_db
def test_another_campaigns_schedule_does_not_tag(flow, campaign, time_machine):
    time_machine.move_to(FRIDAY_10_DENVER, tick=False)
    handler(campaign)
    tagging_hours_create(fields={"name": "Open", "campaign": CampaignFactory(), "timezone": "America/Denver",
                                 "hours": WEEKDAYS_9_5, "tag_key": "hours", "tag_value": "open"})
    flow.start()
    assert "hours" not in Call.objects.get().tags


@pytest.mark.django_db
def test_tagging_hours_are_edited_on_the_hours_grid(admin_client):
    campaign_config_cache_clear()
    url = reverse("admin:tracking_tagginghours_add")
    page = admin_client.get(url).content.decode()
    assert 'name="hours_mon"' in page
    data = {"name": "After hours", "enabled": "on", "timezone": "America/Denver", "match": "outside", "tag_key": "hours",
            "tag_value": "after_hours", **{f"hours_{d}": "09:00-17:00" for d in ("mon", "tue", "wed", "thu", "fri")},
            "hours_sat": "", "hours_sun": ""}
    response = admin_client.post(url, data)
    assert response.status_code == 302, response.content.decode()[:2000]
    schedule = TaggingHours.objects.get()
    assert schedule.hours == WEEKDAYS_9_5 and schedule.campaign is None
    bad = admin_client.post(url, {**data, "hours_mon": "17:00-09:00", "timezone": "Mars/Olympus"})
    assert bad.status_code == 200
    assert "closes before it opens" in bad.content.decode() and "is not an IANA time zone" in bad.content.decode()


@pytest.mark.django_db
def test_the_api_writes_tagging_hours_and_filters_calls_by_tag(admin_user, campaign):
    api = APIClient()
    api.force_authenticate(admin_user)
    created = api.post("/api/v1/tagging-hours/", {"name": "Weekend", "campaign": campaign.pk, "timezone": "UTC",
                                                  "hours": {"sat": ["00:00-24:00"]}, "tag_key": "hours", "tag_value": "weekend"},
                       format="json")
    assert created.status_code == 201, created.content
    assert created.json()["match"] == "inside"
    bad = api.post("/api/v1/tagging-hours/", {"name": "x", "timezone": "UTC", "hours": {"sat": ["25:00-26:00"]}, "tag_value": "x\x00"},
                   format="json")
    assert bad.status_code == 400
    Call.objects.create(call_sid="CAt1", campaign=campaign, tags={"hours": "weekend"})
    Call.objects.create(call_sid="CAt2", campaign=campaign, tags={"hours": "open"})
    found = api.get("/api/v1/calls/", {"tag": "hours:Weekend"})
    assert found.status_code == 200, found.content
    assert [c["call_sid"] for c in found.json()["results"]] == ["CAt1"]
    assert api.get("/api/v1/calls/", {"tag": "no colon"}).status_code == 400
    assert api.get("/api/v1/calls/", {"tag": "a__contains:x"}).json()["results"] == []
