"""The dashboard's spam panel in a real browser (Debian's Chromium through Playwright) at 1440x900: it fits the
screen beside the rest of the dashboard, and its top caller opens the call log on that caller's spam calls.
Skips cleanly where /usr/bin/chromium or playwright is missing. ``CALLTRACK_SCREENSHOTS=dir`` saves the pages."""

from __future__ import annotations

import pytest

from tests.console.helpers import logged_in_page
from tests.reports.spam_world import make_spam_world
from tests.reports.test_dashboard_browser import shot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
VIEWPORT = {"width": 1440, "height": 900}


@pytest.fixture
def page(browser, live_server):
    yield from logged_in_page(browser, live_server, username="spamwatch", viewport=VIEWPORT)


def test_the_spam_panel_fits_at_1440_and_its_top_caller_opens_the_log(page, live_server, settings):
    settings.TIME_ZONE = "UTC"
    make_spam_world()
    page.goto(f"{live_server.url}/admin/?range=7d")
    panel = page.locator('[data-testid="spam-panel"]')
    panel.wait_for()
    assert page.inner_text('[data-testid="spam-calls"]').strip() == "6"
    box = panel.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= VIEWPORT["width"]
    assert page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth") == 0
    for table in ("spam-actions", "spam-reasons", "spam-callers"):
        inner = page.locator(f'[data-testid="{table}"]').bounding_box()
        assert inner["x"] >= box["x"] and inner["x"] + inner["width"] <= box["x"] + box["width"] + 1, table
    assert page.locator('[data-spam-action="failed"]').inner_text().strip().startswith("…")
    panel.scroll_into_view_if_needed()
    shot(page, "spam_panel")
    page.click('[data-spam-caller="+14155550111"]')
    page.locator("#result_list").wait_for()
    assert page.locator("#result_list tbody tr").count() == 3
    shot(page, "spam_panel_caller_log")
