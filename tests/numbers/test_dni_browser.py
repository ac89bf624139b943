"""The DNI tag in a real browser: Debian's Chromium driven by Playwright against a live server.

Skips cleanly where /usr/bin/chromium or the playwright package is missing (never `playwright install`).
"""

from __future__ import annotations

import os
import re
from urllib.parse import urlencode

import pytest
from django.urls import Resolver404, resolve
from django.utils import timezone

from calltrack.numbers.models import NumberSession, TrackingNumber
from calltrack.numbers.selectors import attribution_for_call, session_for_call
from tests.numbers.factories import NumberPoolFactory, TrackingNumberFactory
from tests.tracking.factories import SourceFactory

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--no-first-run",
]
UTM = {"utm_source": "google", "utm_medium": "cpc", "utm_campaign": "spring-sale", "gclid": "Cj0KCQ-test"}

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="module")
def browser():
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is missing (apt-get install -y chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
    # Playwright's sync API keeps an asyncio loop on this thread while our (synchronous) test code runs
    # between its calls; Django would refuse ORM calls there. Nothing runs concurrently, so say it is safe
    # for the browser's lifetime only (Playwright's documented advice for Django).
    before = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_api.sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            yield browser
            browser.close()
    finally:
        if before is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = before


@pytest.fixture
def page(browser):
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    context.close()


@pytest.fixture
def demo_pool(settings):
    settings.CALLTRACK_DNI_DEMO = True
    settings.CALLTRACK_DNI_RATE_LIMIT_IP = "1000/minute"
    pool = NumberPoolFactory(key="demo", name="Demo", source=SourceFactory(name="Website"))
    for n in ("+14152000001", "+14152000002", "+13032000001"):
        TrackingNumberFactory(number=n, kind="pool", pool=pool, campaign=pool.campaign)
    return pool


def national(e164: str) -> tuple[str, str, str]:
    return e164[2:5], e164[5:8], e164[8:]


def test_the_tag_swaps_the_number_in_text_and_links_and_the_call_carries_the_utm_values(live_server, page, demo_pool, settings):
    page.goto(f"{live_server.url}/dni/demo/?{urlencode({'pool': 'demo', **UTM})}")
    page.wait_for_selector("html[data-calltrack-number]")

    number = page.get_attribute("html", "data-calltrack-number")
    assert number.startswith("+1415")  # same area code as the page's (415) number
    area, exchange, line = national(number)
    assert page.inner_text("#phone-text") == f"({area}) {exchange}-{line}"
    assert page.inner_text("#phone-link") == f"Call ({area}) {exchange}-{line}"
    assert page.get_attribute("#phone-link", "href") == f"tel:{number}"
    assert page.inner_text("#phone-footer") == f"{area}.{exchange}.{line}"
    assert page.inner_text("#fax") == "(212) 555-0111"  # another number on the page is left alone
    visitor = next(c["value"] for c in page.context.cookies() if c["name"] == "_ct_vid")

    # A second page view of the same visitor shows the same number.
    page.goto(f"{live_server.url}/dni/demo/?pool=demo")
    page.wait_for_selector("html[data-calltrack-number]")
    assert page.get_attribute("html", "data-calltrack-number") == number
    assert NumberSession.objects.filter(visitor_id=visitor).count() == 1

    # The visitor calls the number it was shown.
    tracking_number = TrackingNumber.objects.get(number=number)
    session = session_for_call(tracking_number=tracking_number, at=timezone.now())
    assert session is not None and session.visitor_id == visitor
    assert session.marketing_data == UTM
    assert session.landing_page.startswith(f"{live_server.url}/dni/demo/?pool=demo&utm_source=google")
    attribution = attribution_for_call(tracking_number=tracking_number, at=timezone.now())
    assert attribution.marketing_data == UTM and attribution.source_id == demo_pool.source_id

    _call_through_the_voice_webhook_if_it_exists(live_server, settings, number, visitor)


def _call_through_the_voice_webhook_if_it_exists(live_server, settings, number: str, visitor: str) -> None:
    """When routing's /voice/incoming is on this branch, post a signed call and check the Call's data."""
    try:
        resolve("/voice/incoming")
    except Resolver404:
        return
    import requests  # the twilio SDK depends on it
    from twilio.request_validator import RequestValidator

    from tracking.models import Call

    settings.TWILIO_AUTH_TOKEN = settings.TWILIO_AUTH_TOKEN or "dni-browser-test-token"
    settings.CALLTRACK_PUBLIC_BASE_URL = live_server.url  # the URL Twilio signs is the one we post to
    url = f"{live_server.url}/voice/incoming"
    params = {"CallSid": "CA" + "d" * 32, "AccountSid": "AC" + "0" * 32, "From": "+13035550142", "To": number,
              "CallStatus": "ringing", "Direction": "inbound"}
    signature = RequestValidator(settings.TWILIO_AUTH_TOKEN).compute_signature(url, params)
    response = requests.post(url, data=params, headers={"X-Twilio-Signature": signature}, timeout=10)
    assert response.status_code == 200, response.text
    call = Call.objects.get(call_sid=params["CallSid"])
    assert {k: call.marketing_data.get(k) for k in UTM} == UTM
    assert call.visitor_id == visitor


def test_the_page_keeps_its_own_number_when_the_api_fails(live_server, page, demo_pool):
    with page.expect_response(re.compile(r"/dni/v1/assign$")) as answer:
        page.goto(f"{live_server.url}/dni/demo/?pool=no-such-pool")
    assert answer.value.status == 404
    page.wait_for_load_state("networkidle")
    assert page.inner_text("#phone-text") == "(415) 555-0100"
    assert page.get_attribute("#phone-link", "href") == "tel:+14155550100"
    assert page.get_attribute("html", "data-calltrack-number") is None
