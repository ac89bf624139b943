"""Every breakdown row's link opens exactly the calls the row counts: the dashboard is rendered, each row's link
and count collected, the link followed into the call log, and the log's calls counted; "(none)" rows (no
party, a missing, null or blank UTM value, no state), values longer than the rollups once kept, and numbers
stored as UTM values included; before and after the rollups are refreshed on PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from calltrack import reports
from tests.reports.fixtures import make_world
from tests.tracking.factories import CallFactory, UserFactory
from tracking.models import Call
from tracking.services.reports import report_rollups_refresh

pytestmark = pytest.mark.django_db
LONG = "spring-sale-" + "x" * 240  # 252 characters: the tag accepts 500


@pytest.fixture
def world(settings):
    settings.TIME_ZONE = "America/New_York"
    settings.AXES_ENABLED = False
    now = timezone.now()
    world = make_world(now=now, days=20, count=60)
    day = now - timedelta(days=2)
    tn = world.numbers[0]
    for i in range(2):
        CallFactory(tracking_number=tn, source=tn.source, campaign=tn.campaign, started_at=day - timedelta(hours=i),
                    marketing_data={"utm_campaign": LONG, "utm_source": "", "utm_medium": "cpc"})
    CallFactory(tracking_number=tn, source=tn.source, campaign=tn.campaign, started_at=day,
                marketing_data={"utm_campaign": LONG[:200], "utm_source": "google"})  # the cut value: another row
    CallFactory(tracking_number=None, source=None, campaign=None, handler=None, started_at=day, caller_state="",
                marketing_data={"utm_source": {"a": 1}, "utm_medium": None, "utm_campaign": 7})  # an object, null, a number
    return world


@pytest.fixture
def boss() -> Client:
    client = Client()
    client.force_login(UserFactory(username="boss", is_staff=True, is_superuser=True))
    return client


def rows_of(client: Client, by: str) -> list[dict]:
    page = client.get(reverse("admin:index"), {"range": "30d", "by": by})
    assert page.status_code == 200 and page.context["by"] == by
    return [
        {"label": row["label"], "calls": int(row["cells"][0].replace(",", "")), "url": row["url"]}
        for row in page.context["breakdown_rows"]
    ]


def calls_on_the_log(client: Client, url: str) -> int:
    response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    return response.context["cl"].queryset.count()


def assert_every_row_opens_its_calls(client: Client) -> None:
    total = reports.report_summary(scope=reports.Scope(), period=reports.period_for("30d")).current.calls
    for by in reports.DIMENSIONS:
        rows = rows_of(client, by)
        assert sum(r["calls"] for r in rows) == total, by
        assert "(none)" in [r["label"] for r in rows], by  # every dimension has calls without a value here
        for row in rows:
            assert calls_on_the_log(client, row["url"]) == row["calls"], (by, row["label"][:40], row["url"][:300])


def test_every_breakdown_row_links_to_exactly_its_calls(world, boss):
    assert_every_row_opens_its_calls(boss)


@pytest.mark.postgres
def test_every_breakdown_row_links_to_exactly_its_calls_from_the_rollups_and_after_a_late_change(world, boss):
    assert report_rollups_refresh(all_days=True) >= 20
    assert len(reports.split_days(reports.Scope(), reports.period_for("30d"))[0]) >= 19
    assert_every_row_opens_its_calls(boss)
    late = Call.objects.filter(marketing_data__utm_campaign=LONG).first()
    Call.objects.filter(pk=late.pk).update(handler=None, marketing_data={"utm_source": "", "utm_campaign": LONG})
    assert_every_row_opens_its_calls(boss)
    report_rollups_refresh()
    assert_every_row_opens_its_calls(boss)


def test_the_none_row_of_handlers_opens_only_the_calls_without_a_handler(world, boss):
    row = next(r for r in rows_of(boss, "handler") if r["label"] == "(none)")
    assert calls_on_the_log(boss, row["url"]) == row["calls"]
    period = reports.period_for("30d")
    assert row["calls"] == Call.objects.filter(handler=None, started_at__gte=period.start, started_at__lt=period.end).count()
    assert row["calls"] < Call.objects.filter(started_at__gte=period.start, started_at__lt=period.end).count()


def test_the_none_row_of_a_utm_value_opens_the_missing_and_the_blank_ones(world, boss):
    period = reports.period_for("30d")
    calls = Call.objects.filter(started_at__gte=period.start, started_at__lt=period.end)
    want = sum(1 for c in calls if not c.marketing_data.get("utm_source"))
    assert calls.filter(marketing_data__utm_source="").exists()
    row = next(r for r in rows_of(boss, "utm_source") if r["label"] == "(none)")
    assert row["calls"] == want
    assert calls_on_the_log(boss, row["url"]) == want


def test_a_long_utm_campaign_keeps_its_own_row_and_its_link_finds_its_calls(world, boss):
    if connection.vendor == "postgresql":
        report_rollups_refresh(all_days=True)
    rows = {r["label"]: r for r in rows_of(boss, "utm_campaign")}
    assert rows[LONG]["calls"] == 2 and rows[LONG[:200]]["calls"] == 1
    assert calls_on_the_log(boss, rows[LONG]["url"]) == 2


@pytest.mark.parametrize("kind", ["source", "handler"])
def test_a_collaborators_breakdown_rows_link_to_exactly_its_calls(world, kind):
    from tracking.models import Collaborator

    user = UserFactory(username=f"partner-{kind}", is_staff=True)
    Collaborator.objects.create(user=user, **({"source": world.sources[0]} if kind == "source" else {"handler": world.handlers[0]}))
    client = Client()
    client.force_login(user)
    page = client.get(reverse("admin:index"), {"range": "30d"})
    for tab in page.context["breakdown_tabs"]:
        for row in rows_of(client, tab["key"]):
            assert calls_on_the_log(client, row["url"]) == row["calls"], (kind, tab["key"], row["label"][:40])
