"""The admin's landing page is the dashboard: figures, chart, breakdown links into the call log, alerts."""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from calltrack import reports
from calltrack.scoping import Scope
from tests.api.conftest import grant
from tests.numbers.factories import NumberSessionFactory
from tests.reports.fixtures import expected, make_world
from tests.tracking.factories import UserFactory
from tracking.models import Collaborator

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    return make_world(now=timezone.now(), days=40, count=80)


def login(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def boss(db):
    user = UserFactory(username="boss", is_staff=True, is_superuser=True)
    return login(user)


def test_the_admin_index_shows_the_headline_figures_counted_from_the_rows(world, boss):
    page = boss.get(reverse("admin:index") + "?range=30d")
    period = reports.period_for("30d")
    want = expected(world.calls, period.start, period.end)
    figures = {f["key"]: f["value"] for f in page.context["figures"]}
    assert figures["calls"] == f"{want['calls']:,}"
    assert figures["blocked"] == f"{want['blocked']:,}"
    assert figures["revenue"] == f"${want['revenue']:,.2f}"
    html = page.content.decode()
    assert 'data-testid="figure-calls"' in html and 'class="chart"' in html
    assert "Fail-safe calls" in html and "Margin" in html


def test_breakdown_rows_link_to_the_call_log_filtered_to_them_and_the_period(world, boss):
    page = boss.get(reverse("admin:index") + "?range=7d&by=source")
    row = next(r for r in page.context["breakdown_rows"] if r["label"] == "Google Ads")
    url = urlparse(row["url"])
    assert url.path == reverse("admin:tracking_call_changelist")
    query = parse_qs(url.query)
    assert query["source__id__exact"] == [str(world.sources[0].pk)]
    period = reports.period_for("7d")
    assert query["started_at__gte"] == [reports.call_log_params(period)["started_at__gte"]]


def test_the_breakdown_sorts_by_a_column(world, boss):
    rows = boss.get(reverse("admin:index") + "?range=30d&by=caller_state&sort=label").context["breakdown_rows"]
    assert [r["label"] for r in rows] == sorted((r["label"] for r in rows), key=str.lower)
    rows = boss.get(reverse("admin:index") + "?range=30d&by=caller_state&sort=-calls").context["breakdown_rows"]
    counts = [int(r["cells"][0].replace(",", "")) for r in rows]
    assert counts == sorted(counts, reverse=True)


def test_alerts_show_a_pool_that_overflowed(world, boss):
    NumberSessionFactory(pool=world.pool, tracking_number=None, is_overflow=True, started_at=timezone.now())
    page = boss.get(reverse("admin:index") + "?range=today")
    assert any(a["kind"] == "pool_overflow" and "Landing pages" in a["message"] for a in page.context["alerts"])
    assert "ran out of numbers" in page.content.decode()


@pytest.mark.parametrize(
    "query", ["range=custom&from=2026-13-01&to=2026-01-01", "range=custom&from=%00&to=x", "range=%ED%A0%80", "by=%00&sort=%00",
              "range=custom&from=2026-03-09&to=2026-03-01", "range=custom&from=0001-01-01&to=9999-12-31"],
)
def test_bad_range_parameters_show_the_default_range_with_a_message_not_an_error(world, boss, query):
    page = boss.get(reverse("admin:index") + "?" + query)
    assert page.status_code == 200
    assert page.context["period"].key == reports.DEFAULT_RANGE or page.context["period"].key == "custom"


def test_a_source_collaborator_sees_its_own_figures_and_no_revenue(world):
    user = UserFactory(username="partner", is_staff=True)
    Collaborator.objects.create(user=user, source=world.sources[1])
    page = login(user).get(reverse("admin:index") + "?range=30d")
    figures = {f["key"]: f["value"] for f in page.context["figures"]}
    mine = reports.report_summary(scope=Scope(source_id=world.sources[1].pk), period=reports.period_for("30d")).current
    assert figures["calls"] == f"{mine.calls:,}"
    assert "revenue" not in figures and "margin" not in figures and "payout" in figures
    tabs = [t["key"] for t in page.context["breakdown_tabs"]]
    assert "handler" not in tabs and "campaign" not in tabs
    html = page.content.decode()
    assert "Revenue" not in html and "Margin" not in html


def test_staff_without_access_to_calls_get_the_table_list(world):
    clerk = UserFactory(username="clerk", is_staff=True)
    grant(clerk, "tracking.view_source")
    page = login(clerk).get(reverse("admin:index"))
    assert page.status_code == 200 and "figures" not in page.context


def test_the_chart_leaves_hours_to_come_empty_and_its_line_never_overshoots():
    from datetime import datetime, timedelta
    from zoneinfo import ZoneInfo

    from calltrack import dashboard, reports

    now = datetime(2026, 12, 6, 12, 30, tzinfo=ZoneInfo("UTC"))
    buckets = [reports.Bucket(start=now.replace(minute=0) + timedelta(hours=h), label=f"{12 + h}:00", answered=3, converted=2)
               for h in (-1, 0, 1, 2)]
    chart = dashboard._chart(buckets, now=now)
    answered = next(d for d in chart["datasets"] if d["label"] == "Answered")
    line = next(d for d in chart["datasets"] if d["type"] == "line")
    assert answered["data"] == [3, 3, None, None] and line["data"] == [2, 2, None, None]
    assert line["cubicInterpolationMode"] == "monotone" and "tension" not in line
