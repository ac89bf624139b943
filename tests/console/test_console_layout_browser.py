"""The console at 1440x900 in Chromium, on the demo's data: the call log shows 15 or more calls, each on one line,
and no changelist or change page of the admin scrolls sideways (the page, or a box inside it).

Skips cleanly where /usr/bin/chromium or the playwright package is missing (never `playwright install`).
"""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.urls import reverse

from calltrack.demo import demo_load
from tests.console.helpers import logged_in_page

VIEWPORT = {"width": 1440, "height": 900}

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Boxes wider than they show (a table that scrolls sideways inside the page), ignoring the theme's own
# one-pixel scroll helpers.
_SIDEWAYS = """() => [...document.querySelectorAll('*')].filter(e => {
    const style = getComputedStyle(e);
    return e.clientWidth > 40 && e.scrollWidth > e.clientWidth + 2 && ['auto', 'scroll'].includes(style.overflowX);
}).map(e => `${e.id || e.className || e.tagName}: ${e.scrollWidth} > ${e.clientWidth}`.slice(0, 120))"""


@pytest.fixture
def page(browser, live_server):
    yield from logged_in_page(browser, live_server, username="layout", viewport=VIEWPORT)


def test_the_call_log_shows_at_least_15_calls_each_on_one_line(page, live_server):
    demo_load(calls=60)
    page.goto(f"{live_server.url}/admin/tracking/call/")
    page.locator("#result_list").wait_for()
    rows = page.evaluate("""() => [...document.querySelectorAll('#result_list tbody tr')].map(r => {
        const box = r.getBoundingClientRect();
        return {top: box.top, bottom: box.bottom, height: box.height};
    })""")
    on_screen = [r for r in rows if r["bottom"] <= VIEWPORT["height"]]
    assert len(on_screen) >= 15, rows[:20]
    # One line each: every row as tall as one line of text (no wrapped number, city or name).
    assert max(r["height"] for r in rows) <= 40, sorted({round(r["height"]) for r in rows})
    assert page.locator("#call-log-count").inner_text().endswith("matching calls")
    assert page.locator(".ct-log-presets a").count() == 6


def test_no_changelist_or_change_page_of_the_admin_scrolls_sideways(page, live_server):
    demo_load(calls=30)
    urls = []
    for model in admin.site._registry:
        info = (model._meta.app_label, model._meta.model_name)
        urls.append(reverse("admin:{}_{}_changelist".format(*info)))
        pk = model.objects.order_by("-pk").values_list("pk", flat=True).first()
        if pk is not None:
            urls.append(reverse("admin:{}_{}_change".format(*info), args=[pk]))
    wide = {}
    for url in urls:
        response = page.goto(f"{live_server.url}{url}")
        assert response.status < 500, url
        overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        boxes = page.evaluate(_SIDEWAYS)
        if overflow > 0 or boxes:
            wide[url] = (overflow, boxes)
    assert wide == {}
