"""The API's reports: the selector's figures, scoped like the calls API; the dashboard shows the same numbers."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from calltrack import reports
from calltrack.scoping import Scope
from tests.api.conftest import grant, token_client
from tests.reports.fixtures import expected, make_world
from tests.tracking.factories import UserFactory
from tracking.models import Collaborator

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    return make_world(now=timezone.now(), days=40, count=90)


@pytest.fixture
def staff_user(db):
    user = UserFactory(username="boss", is_staff=True)
    grant(user, "tracking.view_call")
    return user


def test_summary_gives_the_period_and_previous_figures_counted_from_the_rows(world, staff_user):
    data = token_client(staff_user).get("/api/v1/reports/summary?range=30d").json()
    period = reports.period_for("30d")
    want = expected(world.calls, period.start, period.end)
    cur = data["current"]
    assert (cur["calls"], cur["answered"], cur["missed"], cur["blocked"], cur["converted"]) == (
        want["calls"], want["answered"], want["missed"], want["blocked"], want["converted"])
    assert Decimal(cur["revenue"]) == want["revenue"] and Decimal(cur["margin"]) == want["revenue"] - want["payout"]
    prev = reports.period_for("30d").previous()
    assert data["previous"]["calls"] == expected(world.calls, prev.start, prev.end)["calls"]
    assert data["period"]["first_day"] == period.first_day.isoformat()


def test_timeseries_has_a_bucket_per_day_adding_up_to_the_summary(world, staff_user):
    client = token_client(staff_user)
    series = client.get("/api/v1/reports/timeseries?range=7d").json()
    summary = client.get("/api/v1/reports/summary?range=7d").json()
    assert series["interval"] == "day" and len(series["buckets"]) == 7
    assert sum(b["calls"] for b in series["buckets"]) == summary["current"]["calls"]
    assert client.get("/api/v1/reports/timeseries?range=today").json()["interval"] == "hour"


def test_breakdown_rows_add_up_and_name_the_sources(world, staff_user):
    data = token_client(staff_user).get("/api/v1/reports/breakdown?by=source&range=30d").json()
    period = reports.period_for("30d")
    assert sum(r["totals"]["calls"] for r in data["rows"]) == expected(world.calls, period.start, period.end)["calls"]
    assert {r["label"] for r in data["rows"]} <= {"Google Ads", "Billboards", "(none)"}


def test_custom_range_reads_start_and_end_days(world, staff_user):
    today = timezone.localdate()
    start = today - timezone.timedelta(days=9)
    data = token_client(staff_user).get(f"/api/v1/reports/summary?range=custom&start={start}&end={today}").json()
    assert data["period"]["first_day"] == start.isoformat()
    assert data["current"]["calls"] == reports.report_summary(
        scope=Scope(), period=reports.period_for("custom", first_day=start, last_day=today)
    ).current.calls


@pytest.mark.parametrize(
    "query",
    ["range=forever", "range=custom", "range=custom&start=2026-02-30&end=2026-03-01", "range=custom&start=2026-03-09&end=2026-03-01",
     "range=custom&start=0001-01-01&end=0001-01-02", "range=custom&start=2026-01-01%00&end=2026-01-02",
     "range=custom&start=2026-01-01&end=%ED%A0%80", "range=custom&start=1900-01-01&end=2026-01-01"],
)
def test_bad_periods_get_a_400_with_a_reason(world, staff_user, query):
    response = token_client(staff_user).get(f"/api/v1/reports/summary?{query}")
    assert response.status_code == 400, response.content
    assert response.json()


def test_unknown_breakdown_is_a_400(world, staff_user):
    assert token_client(staff_user).get("/api/v1/reports/breakdown?by=weather").status_code == 400
    assert token_client(staff_user).get("/api/v1/reports/breakdown").status_code == 400


def test_source_collaborator_sees_its_calls_and_no_revenue_nor_handler_breakdown(world):
    user = UserFactory(username="partner", is_staff=True)
    source = world.sources[0]
    Collaborator.objects.create(user=user, source=source)
    client = token_client(user)
    data = client.get("/api/v1/reports/summary?range=30d").json()
    period = reports.period_for("30d")
    want = expected([c for c in world.calls if c.source_id == source.pk], period.start, period.end, side="payout")
    assert data["current"]["calls"] == want["calls"] and data["current"]["converted"] == want["converted"]
    assert Decimal(data["current"]["payout"]) == want["payout"]
    assert data["current"]["revenue"] is None and data["current"]["margin"] is None
    assert client.get("/api/v1/reports/breakdown?by=handler").status_code == 400
    rows = client.get("/api/v1/reports/breakdown?by=tracking_number&range=30d").json()["rows"]
    assert all(r["totals"]["revenue"] is None for r in rows)


def test_handler_collaborator_sees_its_calls_and_no_payout(world):
    user = UserFactory(username="buyer")
    handler = world.handlers[1]
    Collaborator.objects.create(user=user, handler=handler)
    data = token_client(user).get("/api/v1/reports/summary?range=30d").json()
    period = reports.period_for("30d")
    want = expected([c for c in world.calls if c.handler_id == handler.pk], period.start, period.end, side="revenue")
    assert data["current"]["calls"] == want["calls"] and Decimal(data["current"]["revenue"]) == want["revenue"]
    assert data["current"]["payout"] is None


def test_users_who_are_neither_staff_with_call_access_nor_collaborators_are_refused(world):
    plain = UserFactory(username="plain")
    staff_without_perm = UserFactory(username="clerk", is_staff=True)
    for user in (plain, staff_without_perm):
        assert token_client(user).get("/api/v1/reports/summary").status_code == 403
    assert Client().get("/api/v1/reports/summary").status_code in (401, 403)


def test_dashboard_and_api_show_the_same_figures(world, staff_user):
    """One selector: the admin dashboard's cards and table equal the API's numbers."""
    from calltrack.dashboard import fmt

    browser = Client()
    browser.force_login(staff_user)
    page = browser.get(reverse("admin:index") + "?range=30d&by=campaign")
    assert page.status_code == 200
    api = token_client(staff_user)
    summary = api.get("/api/v1/reports/summary?range=30d").json()["current"]
    figures = {f["key"]: f["value"] for f in page.context["figures"]}
    assert figures["calls"] == fmt(summary["calls"], "count")
    assert figures["answered"] == fmt(summary["answered"], "count")
    assert figures["revenue"] == fmt(Decimal(summary["revenue"]), "money")
    assert figures["answer_rate"] == fmt(summary["answer_rate"], "rate")
    breakdown = api.get("/api/v1/reports/breakdown?by=campaign&range=30d").json()["rows"]
    table = {row["label"]: row["cells"][0] for row in page.context["breakdown_rows"]}
    assert table == {row["label"]: fmt(row["totals"]["calls"], "count") for row in breakdown}
    series = api.get("/api/v1/reports/timeseries?range=30d").json()["buckets"]
    chart = json.loads(page.context["chart_data"])
    answered = next(d for d in chart["datasets"] if d["label"] == "Answered")
    assert answered["data"] == [b["answered"] for b in series]
