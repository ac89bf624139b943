"""Calls over the API: filters, ordering, cursor pagination."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.numbers.factories import TrackingNumberFactory
from tests.tracking.factories import CallFactory, CampaignFactory, HandlerFactory, SourceFactory

T0 = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)


def sids(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [row["call_sid"] for row in response.json()["results"]]


@pytest.fixture
def calls(db):
    campaign, other_campaign = CampaignFactory(), CampaignFactory()
    source, handler = SourceFactory(), HandlerFactory()
    number = TrackingNumberFactory(campaign=campaign)
    return {
        "a": CallFactory(call_sid="a", campaign=campaign, source=source, started_at=T0, status="completed", converted=True, caller_number="+14155550111", tracking_number=number),
        "b": CallFactory(call_sid="b", campaign=campaign, handler=handler, started_at=T0 + timedelta(hours=1), status="busy", duration=30),
        "c": CallFactory(call_sid="c", campaign=other_campaign, started_at=T0 + timedelta(days=1), status="no_answer", duration=90),
        "objects": {"campaign": campaign, "source": source, "handler": handler, "number": number},
    }


def test_calls_are_listed_newest_first(staff, calls):
    assert sids(staff.get("/api/v1/calls/")) == ["c", "b", "a"]


def test_calls_filter_by_date_range(staff, calls):
    params = {"started_after": T0.isoformat(), "started_before": (T0 + timedelta(hours=1)).isoformat()}
    assert sids(staff.get("/api/v1/calls/", params)) == ["a"]
    assert sids(staff.get("/api/v1/calls/", {"started_after": "2026-03-02T16:00:00Z"})) == ["c", "b"]


def test_calls_filter_by_campaign_source_handler_and_tracking_number(staff, calls):
    objs = calls["objects"]
    assert sids(staff.get("/api/v1/calls/", {"campaign": objs["campaign"].pk})) == ["b", "a"]
    assert sids(staff.get("/api/v1/calls/", {"source": objs["source"].pk})) == ["a"]
    assert sids(staff.get("/api/v1/calls/", {"handler": objs["handler"].pk})) == ["b"]
    assert sids(staff.get("/api/v1/calls/", {"tracking_number": objs["number"].pk})) == ["a"]


def test_calls_filter_by_status_converted_and_caller_in_any_format(staff, calls):
    assert sids(staff.get("/api/v1/calls/?status=busy&status=no_answer")) == ["c", "b"]
    assert sids(staff.get("/api/v1/calls/", {"converted": "true"})) == ["a"]
    assert sids(staff.get("/api/v1/calls/", {"caller": "(415) 555-0111"})) == ["a"]
    assert sids(staff.get("/api/v1/calls/", {"caller": "anonymous"})) == []


def test_bad_filter_values_are_400_naming_the_parameter(staff, calls):
    response = staff.get("/api/v1/calls/", {"started_after": "yesterday", "status": "lost", "campaign": "x"})
    assert response.status_code == 400
    assert set(response.json()) == {"started_after", "status", "campaign"}


def test_calls_can_be_ordered_by_duration(staff, calls):
    assert sids(staff.get("/api/v1/calls/", {"ordering": "-duration"})) == ["c", "b", "a"]
    assert sids(staff.get("/api/v1/calls/", {"ordering": "duration"})) == ["a", "b", "c"]


def test_calls_are_cursor_paginated(staff, calls):
    first = staff.get("/api/v1/calls/", {"page_size": 2}).json()
    assert [r["call_sid"] for r in first["results"]] == ["c", "b"]
    assert "count" not in first
    second = staff.get(first["next"]).json()
    assert [r["call_sid"] for r in second["results"]] == ["a"]
    assert second["next"] is None
    assert staff.get("/api/v1/calls/", {"cursor": "garbage"}).status_code == 404


def test_a_call_shows_attribution_and_marketing_data(staff, db):
    source = SourceFactory(source_id="adwords")
    call = CallFactory(source=source, marketing_data={"utm_source": "google", "gclid": "abc"}, landing_page="https://example.com/a", visitor_id="v1")
    data = staff.get(f"/api/v1/calls/{call.pk}/").json()
    assert data["marketing_data"] == {"utm_source": "google", "gclid": "abc"}
    assert data["source_public_id"] == "adwords"
    assert (data["landing_page"], data["visitor_id"]) == ("https://example.com/a", "v1")


def test_calls_are_read_only(staff, calls):
    assert staff.post("/api/v1/calls/", {"call_sid": "x"}, format="json").status_code == 405
    assert staff.delete(f"/api/v1/calls/{calls['a'].pk}/").status_code == 405
