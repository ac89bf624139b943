"""The dashboard in a real browser (Debian's Chromium driven by Playwright) at 1440x900.

Logs in through the admin's form, reads the figures on the page and compares them with counts made here
from the rows the test created; changes the range; logs in as a source collaborator. Skips cleanly where
/usr/bin/chromium or playwright is missing. ``CALLTRACK_SCREENSHOTS=dir`` saves the pages as PNGs.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from calltrack import reports
from tests.reports.fixtures import expected, make_world
from tests.tracking.factories import UserFactory
from tracking.models import Collaborator

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
PASSWORD = "pw-for-tests-only"


@pytest.fixture
def page(browser):  # noqa: F811
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


@pytest.fixture
def world(settings):
    settings.TIME_ZONE = "UTC"
    return make_world(now=timezone.now(), days=40, count=70)


def log_in(page, live_server, username: str) -> None:
    page.goto(f"{live_server.url}/admin/login/?next=/admin/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit], input[type=submit]")
    page.wait_for_selector('[data-testid="figure-calls"]')


def figure(page, key: str) -> str:
    return page.inner_text(f'[data-testid="figure-{key}"]').strip()


def shot(page, name: str) -> None:
    folder = os.environ.get("CALLTRACK_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"{name}.png"))


def test_the_dashboard_shows_figures_counted_from_the_rows_and_follows_the_range(live_server, page, world):
    UserFactory(username="boss", is_staff=True, is_superuser=True)
    log_in(page, live_server, "boss")
    week = reports.period_for("7d")
    want = expected(world.calls, week.start, week.end)
    assert figure(page, "calls") == f"{want['calls']:,}"
    assert figure(page, "answered") == f"{want['answered']:,}"
    assert figure(page, "blocked") == f"{want['blocked']:,}"
    assert figure(page, "revenue") == f"${want['revenue']:,.2f}"
    # The figures come first: the headline cards are above the fold at 1440x900, and nothing scrolls sideways.
    box = page.locator('[data-figure="failsafe"]').bounding_box()
    assert box is not None and box["y"] + box["height"] < 900
    assert page.evaluate("document.documentElement.scrollWidth") <= 1440
    # Chart.js (shipped by django-unfold) drew the stacked chart.
    assert page.evaluate("() => !!Chart.getChart(document.querySelector('canvas.chart'))")
    shot(page, "dashboard-7d")

    page.click('.ct-ranges a[data-range="30d"]')
    page.wait_for_url("**range=30d**")
    month = reports.period_for("30d")
    want30 = expected(world.calls, month.start, month.end)
    assert want30["calls"] != want["calls"]
    assert figure(page, "calls") == f"{want30['calls']:,}"
    assert figure(page, "converted") == f"{want30['converted']:,}"

    # A custom range of one day, 3 days ago, by hour.
    day = (timezone.now() - timedelta(days=3)).date()
    page.fill('input[name="from"]', day.isoformat())
    page.fill('input[name="to"]', day.isoformat())
    page.click(".ct-custom button")
    page.wait_for_url("**range=custom**")
    one = reports.period_for("custom", first_day=day, last_day=day)
    assert figure(page, "calls") == f"{expected(world.calls, one.start, one.end)['calls']:,}"
    assert "Calls by hour" in page.inner_text(".ct-chart h2")

    # A breakdown row opens the call log filtered to it.
    page.goto(f"{live_server.url}/admin/?range=30d&by=source")
    page.click('table[data-testid="breakdown"] a:text-is("Google Ads")')
    page.wait_for_url("**/admin/tracking/call/**")
    assert f"source__id__exact={world.sources[0].pk}" in page.url


def test_a_source_collaborator_sees_only_its_calls_and_no_revenue(live_server, page, world):
    user = UserFactory(username="partner", is_staff=True)
    billboards = world.sources[1]
    Collaborator.objects.create(user=user, source=billboards)
    log_in(page, live_server, "partner")
    week = reports.period_for("7d")
    mine = expected([c for c in world.calls if c.source_id == billboards.pk], week.start, week.end, side="payout")
    assert figure(page, "calls") == f"{mine['calls']:,}"
    assert figure(page, "converted") == f"{mine['converted']:,}"
    assert figure(page, "payout") == f"${mine['payout']:,.2f}"
    assert page.locator('[data-figure="revenue"]').count() == 0
    assert page.locator('[data-figure="margin"]').count() == 0
    text = page.inner_text(".ct-dash")
    assert "Revenue" not in text and "Margin" not in text and "Handler" not in text
    shot(page, "dashboard-source-collaborator")


def test_an_alert_stays_on_the_dashboard_until_its_ack_button_and_a_paused_source_shows(live_server, page, settings):
    from tests.tracking.factories import SourceFactory
    from tracking.services.alerts import AlertSpec, alert_raise
    from tracking.services.monitors import source_pause

    settings.TIME_ZONE = "UTC"
    source = SourceFactory(name="Publisher A")
    alert = alert_raise(spec=AlertSpec(kind="fraud_monitor", key="m:1", message="Short calls: Publisher A: short 40% of 20 calls",
                                       source_id=source.pk))
    source_pause(source=source, reason="Short calls: short 40%")
    UserFactory(username="boss", is_staff=True, is_superuser=True)
    log_in(page, live_server, "boss")
    stored = page.locator(f'[data-alert-id="{alert.pk}"]')
    assert "short 40%" in stored.inner_text()
    assert "Paused: Publisher A" in page.inner_text('[data-paused="Publisher A"]')
    shot(page, "dashboard-alerts")
    page.click(f'[data-ack="{alert.pk}"]')
    page.wait_for_selector('[data-testid="figure-calls"]')
    assert page.locator(f'[data-alert-id="{alert.pk}"]').count() == 0
    assert page.locator('[data-paused="Publisher A"]').count() == 1  # the pause stays until the source is resumed
