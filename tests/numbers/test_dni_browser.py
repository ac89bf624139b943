"""The DNI tag in a real browser: Debian's Chromium driven by Playwright against a live server.

Skips cleanly where /usr/bin/chromium or the playwright package is missing (never `playwright install`).
"""

from __future__ import annotations

import re
from urllib.parse import urlencode

import pytest
from django.urls import Resolver404, resolve
from django.utils import timezone

from calltrack.numbers.models import NumberSession, TrackingNumber
from calltrack.numbers.selectors import attribution_for_call, session_for_call
from tests.numbers.factories import NumberPoolFactory, TrackingNumberFactory
from tests.tracking.factories import SourceFactory

UTM = {"utm_source": "google", "utm_medium": "cpc", "utm_campaign": "spring-sale", "gclid": "Cj0KCQ-test"}

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]



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


LANDING = """<!doctype html><html><head><meta charset="utf-8"><title>Quotes</title>
<script>window.calltrack_params = {{lead_score: 87}};</script>
<script async src="{live}/static/calltrack/dni.js" data-api="{live}"
        data-swap="sales=+14155550100, support=+18885550199" data-param-plan="gold"></script>
</head><body>
<p>Sales: <strong id="sales">(415) 555-0100</strong></p>
<p>Support: <a id="support" href="tel:+18885550199">1-888-555-0199</a></p>
<p>Fax: <span id="fax">(212) 555-0111</span></p>
<div id="later"></div>
<script>
  // A single-page app renders the sales number again after load.
  setTimeout(function () {{
    var a = document.createElement("a");
    a.id = "late"; a.href = "tel:+14155550100"; a.textContent = "Call (415) 555-0100";
    document.getElementById("later").appendChild(a);
  }}, 700);
</script>
</body></html>"""


@pytest.fixture
def two_pools(settings):
    from calltrack.numbers.services import records

    settings.CALLTRACK_DNI_RATE_LIMIT_IP = "1000/minute"
    settings.CALLTRACK_DNI_RATE_LIMIT_VISITOR = "1000/minute"
    sales = NumberPoolFactory(key="sales", name="Sales", source=SourceFactory(name="Website"))
    support = NumberPoolFactory(key="support", name="Support", campaign=sales.campaign, source=sales.source)
    for n in ("+14152000001", "+14152000002"):
        TrackingNumberFactory(number=n, kind="pool", pool=sales, campaign=sales.campaign)
    for n in ("+18882000001", "+18882000002"):
        TrackingNumberFactory(number=n, kind="pool", pool=support, campaign=sales.campaign)
    for pool in (sales, support):
        records.pool_parameters_set(pool=pool, entries=[
            {"name": "plan", "kind": "text", "max_length": 20}, {"name": "lead_score", "kind": "integer", "max_length": 4},
        ])
    return sales, support


def test_the_tag_swaps_two_destinations_from_their_pools_and_a_number_inserted_after_load_with_custom_parameters(
    live_server, page, two_pools, settings
):
    url = f"{live_server.url}/landing/quotes/?utm_source=google&utm_campaign=quotes"
    page.route(f"{live_server.url}/landing/quotes/**", lambda route: route.fulfill(
        status=200, content_type="text/html", body=LANDING.format(live=live_server.url)))
    page.goto(url)
    page.wait_for_function("() => document.getElementById('late') && !document.getElementById('late').textContent.includes('555-0100')")

    sales_text = page.inner_text("#sales")
    assert re.fullmatch(r"\(415\) 200-000[12]", sales_text), sales_text
    sales_number = "+1" + re.sub(r"\D", "", sales_text)
    support_href = page.get_attribute("#support", "href")
    assert support_href in ("tel:+18882000001", "tel:+18882000002")
    support_number = support_href[4:]
    assert page.inner_text("#support") == "1-" + "-".join((support_number[2:5], support_number[5:8], support_number[8:]))
    # The number inserted after load shows the sales destination's number, in its own writing.
    assert page.get_attribute("#late", "href") == f"tel:{sales_number}"
    assert page.inner_text("#late") == f"Call {sales_text}"
    assert page.inner_text("#fax") == "(212) 555-0111"
    visitor = next(c["value"] for c in page.context.cookies() if c["name"] == "_ct_vid")

    # Each destination has its own session, from its own pool, with the page's custom parameters.
    sessions = {s.pool.key: s for s in NumberSession.objects.select_related("pool", "tracking_number")}
    assert set(sessions) == {"sales", "support"}
    assert sessions["sales"].tracking_number.number == sales_number
    assert sessions["support"].tracking_number.number == support_number
    for session in sessions.values():
        assert session.visitor_id == visitor
        assert session.marketing_data == {"utm_source": "google", "utm_campaign": "quotes", "plan": "gold", "lead_score": "87"}

    # A call to each number is credited with the page's custom parameters, as tags.
    for n, number in enumerate((sales_number, support_number)):
        call = _signed_call(live_server, settings, number, sid="CA" + str(n) * 32)
        assert call.visitor_id == visitor
        assert call.tags["plan"] == "gold" and call.tags["lead_score"] == "87" and call.tags["utm_source"] == "google"


def _signed_call(live_server, settings, number: str, *, sid: str):
    import requests
    from twilio.request_validator import RequestValidator

    from tracking.models import Call

    settings.TWILIO_AUTH_TOKEN = settings.TWILIO_AUTH_TOKEN or "dni-browser-test-token"
    settings.CALLTRACK_PUBLIC_BASE_URL = live_server.url
    url = f"{live_server.url}/voice/incoming"
    params = {"CallSid": sid, "AccountSid": "AC" + "0" * 32, "From": "+13035550142", "To": number,
              "CallStatus": "ringing", "Direction": "inbound"}
    signature = RequestValidator(settings.TWILIO_AUTH_TOKEN).compute_signature(url, params)
    response = requests.post(url, data=params, headers={"X-Twilio-Signature": signature}, timeout=10)
    assert response.status_code == 200, response.text
    return Call.objects.get(call_sid=sid)
