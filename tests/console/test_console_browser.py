"""The console in a real browser at 1440x900 (Debian's Chromium through Playwright, as tests/numbers/test_dni_browser.py):
the call log shows its columns without sideways scrolling, the CSV export downloads and parses, and the form
traps are gone (hours untick "Always open"; "Add another" handler rows get the next position).

Skips cleanly where /usr/bin/chromium or the playwright package is missing (never `playwright install`).
"""

from __future__ import annotations

import csv
import io

import pytest

from calltrack.demo import demo_load
from tests.console.helpers import logged_in_page
from tests.tracking.factories import CampaignFactory, CampaignHandlerFactory, HandlerFactory
from tracking.models import Call

VIEWPORT = {"width": 1440, "height": 900}
COLUMNS = ["Time", "Caller", "Number", "Source", "Campaign", "Handler", "Status", "Talk", "Converted", "Revenue", "Payout"]

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]



@pytest.fixture
def page(browser, live_server):
    yield from logged_in_page(browser, live_server, username="console", viewport=VIEWPORT, accept_downloads=True)


def _horizontal_overflow(page) -> int:
    return page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")


def test_the_call_log_shows_every_column_at_1440_without_sideways_scrolling(page, live_server):
    demo_load(calls=40)
    page.goto(f"{live_server.url}/admin/tracking/call/")
    table = page.locator("#result_list")
    table.wait_for()
    headers = [h.strip().splitlines()[0] for h in page.locator("#result_list thead th").all_inner_texts() if h.strip()]
    for column in COLUMNS:
        assert column in headers, headers
    widths = page.evaluate("""() => {
        const t = document.querySelector('#result_list');
        return {table: t.getBoundingClientRect().width, box: t.parentElement.clientWidth, scroll: t.parentElement.scrollWidth,
                right: Math.max(...[...t.querySelectorAll('th, td')].map(c => c.getBoundingClientRect().right))};
    }""")
    assert widths["table"] <= widths["box"] and widths["scroll"] <= widths["box"], widths  # nothing hidden to the side
    assert widths["right"] <= VIEWPORT["width"], widths
    assert _horizontal_overflow(page) == 0
    # The last column's values are on screen, not off to the right.
    payout = page.locator("#result_list td.field-payout_money").first.bounding_box()
    assert payout["x"] + payout["width"] <= VIEWPORT["width"]


def test_the_csv_export_of_the_filtered_log_downloads_and_parses(page, live_server):
    demo_load(calls=20)
    call = Call.objects.exclude(source=None).order_by("-started_at").first()
    page.goto(f"{live_server.url}/admin/tracking/call/?source__id__exact={call.source_id}")
    with page.expect_download() as info:
        page.click("#export-csv")
    download = info.value
    assert download.suggested_filename.startswith("calls-") and download.suggested_filename.endswith(".csv")
    with open(download.path(), encoding="utf-8") as file:
        rows = list(csv.DictReader(io.StringIO(file.read())))
    expected = Call.objects.filter(source_id=call.source_id)
    assert len(rows) == expected.count() > 0
    assert {r["source"] for r in rows} == {call.source.name}
    assert {int(r["call_id"]) for r in rows} == set(expected.values_list("pk", flat=True))


def test_picking_an_hours_preset_unticks_always_open_and_the_handler_keeps_its_hours(page, live_server):
    handler = HandlerFactory(name="Denver call center", always_open=True)
    page.goto(f"{live_server.url}/admin/tracking/handler/{handler.pk}/change/")
    assert page.is_checked("input[name=always_open]")
    page.locator(".ct-hours-preset").first.click()
    assert not page.is_checked("input[name=always_open]")
    assert _horizontal_overflow(page) == 0
    page.click("button[name=_save]")
    page.wait_for_url(f"{live_server.url}/admin/tracking/handler/")
    handler.refresh_from_db()
    assert handler.always_open is False and handler.business_hours


def test_a_handler_row_added_with_add_another_gets_the_next_position(page, live_server):
    campaign = CampaignFactory(name="Roof repairs")
    for position in (0, 1):
        CampaignHandlerFactory(campaign=campaign, position=position)
    page.goto(f"{live_server.url}/admin/tracking/campaign/{campaign.pk}/change/")
    assert _horizontal_overflow(page) == 0  # the inlines no longer widen the page (was 2,339 px)
    page.locator("#campaign_handlers-group .add-row a, #campaign_handlers-group a.add-row").first.click()
    assert page.input_value("input[name='campaign_handlers-2-position']") == "2"
