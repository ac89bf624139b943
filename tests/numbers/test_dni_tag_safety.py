"""The DNI tag can never hurt a customer's page: no endless loop when the pool answers the page's own number, and no
configuration taken from page elements that shadow ``document``'s properties (DOM clobbering).

Debian's Chromium through Playwright, as in test_dni_browser.py (skips where either is missing).
"""

from __future__ import annotations

import json
import re

import pytest

from calltrack.numbers.models import NumberSession, OverflowPolicy
from tests.numbers.factories import NumberPoolFactory, TrackingNumberFactory
from tests.tracking.factories import SourceFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Counts the callbacks of every MutationObserver the page makes (the tag's is the only one on these pages), and
# logs a tick every 50 ms: a frozen main thread stops ticking, and the test sees it without waiting on the page
# (Playwright's own calls into a frozen page never return, whatever their timeout).
WATCH_THE_MAIN_THREAD = """
setInterval(function () { console.log("tick"); }, 50);
window.__observed = 0;
(function (MO) {
  window.MutationObserver = function (callback) {
    return new MO(function (records, observer) { window.__observed++; return callback(records, observer); });
  };
})(window.MutationObserver);
"""


@pytest.fixture
def sales_and_overflowing_support(settings):
    """``sales`` has a free number; ``support`` has none and shows its fallback number, the page's own support number."""
    settings.CALLTRACK_DNI_RATE_LIMIT_IP = "1000/minute"
    settings.CALLTRACK_DNI_RATE_LIMIT_VISITOR = "1000/minute"
    sales = NumberPoolFactory(key="sales", name="Sales", source=SourceFactory(name="Website"))
    TrackingNumberFactory(number="+14152000001", kind="pool", pool=sales, campaign=sales.campaign)
    support = NumberPoolFactory(key="support", name="Support", campaign=sales.campaign, source=sales.source,
                                overflow_policy=OverflowPolicy.FALLBACK, fallback_number="+18885550199")
    return sales, support


def serve(page, live_server, body: str, path: str = "/landing/") -> str:
    url = f"{live_server.url}{path}"
    page.route(url, lambda route: route.fulfill(status=200, content_type="text/html", body=body))
    return url


FALLBACK_LANDING = """<!doctype html><html><head><meta charset="utf-8"><title>Support</title>
<script async src="{live}/static/calltrack/dni.js" data-api="{live}"
        data-swap="sales=+14155550100, support=+18885550199"></script>
</head><body>
<p>Sales: <strong id="sales">(415) 555-0100</strong></p>
<p>Support: <span id="support">1-888-555-0199</span> or <a id="support-link" href="tel:+18885550199">call us</a></p>
<div id="later"></div>
</body></html>"""


def test_the_page_stays_responsive_when_the_pool_answers_the_number_the_page_already_shows(
    live_server, page, sales_and_overflowing_support
):
    _, support = sales_and_overflowing_support
    page.add_init_script(WATCH_THE_MAIN_THREAD)
    url = serve(page, live_server, FALLBACK_LANDING.format(live=live_server.url))
    with page.expect_response(lambda r: r.url.endswith("/dni/v1/assign") and b"support" in (r.request.post_data_buffer or b"")) as answer:
        page.goto(url, wait_until="commit")  # not "load": a page that froze first would never fire it
    assert answer.value.status == 200  # its body is not read here: Playwright reads it through the page
    support.refresh_from_db()
    assert support.overflow_count == 1  # the answer was the fallback number: the number the page shows
    ticks = []
    page.on("console", lambda message: ticks.append(message.text))
    page.wait_for_timeout(1_000)  # Playwright's own timer: it does not need the page
    assert ticks.count("tick") >= 5, "the page's main thread stopped answering"
    page.wait_for_function("() => document.getElementById('sales').textContent === '(415) 200-0001'", timeout=3_000)
    assert page.inner_text("#support") == "1-888-555-0199"
    assert page.get_attribute("#support-link", "href") == "tel:+18885550199"

    # Idle, the tag's observer is not called again: nothing loops.
    settled = page.evaluate("() => window.__observed")
    page.wait_for_timeout(500)
    assert page.evaluate("() => window.__observed") == settled
    assert settled < 10

    # A number inserted later is still swapped, and the support number inserted with it is left as it is.
    page.evaluate("""() => {
      const p = document.createElement('p');
      p.innerHTML = 'Call <b id="late-sales">(415) 555-0100</b> or <b id="late-support">1-888-555-0199</b>';
      document.getElementById('later').appendChild(p);
    }""")
    page.wait_for_function("() => document.getElementById('late-sales').textContent === '(415) 200-0001'", timeout=3_000)
    assert page.inner_text("#late-support") == "1-888-555-0199"
    page.wait_for_timeout(300)
    assert page.evaluate("() => window.__observed") <= settled + 2


ATTACKER_NUMBER = "+19005550666"
ATTACKER = "http://evil.example"


@pytest.fixture
def demo_pool(settings):
    settings.CALLTRACK_DNI_RATE_LIMIT_IP = "1000/minute"
    pool = NumberPoolFactory(key="demo", name="Demo", source=SourceFactory(name="Website"))
    TrackingNumberFactory(number="+14152000001", kind="pool", pool=pool, campaign=pool.campaign)
    return pool


def watch_the_hosts(page, live_server) -> list[str]:
    """Every URL the page requests outside the live server; the attacker's host answers with its own number."""
    elsewhere: list[str] = []
    page.on("request", lambda request: None if request.url.startswith(live_server.url) else elsewhere.append(request.url))
    page.route(f"{ATTACKER}/**", lambda route: route.fulfill(
        status=200, content_type="application/json", headers={"Access-Control-Allow-Origin": "*"},
        body=json.dumps({"number": ATTACKER_NUMBER, "national": ATTACKER_NUMBER[2:], "country_code": "1",
                         "formatted": "(900) 555-0666", "session_id": None})))
    return elsewhere


def shown(page, selector: str) -> str:
    # Read through Node.prototype: the page under test shadows document's own properties.
    return page.evaluate("""(selector) => {
      const element = Document.prototype.querySelector.call(document, selector);
      return Object.getOwnPropertyDescriptor(Node.prototype, 'textContent').get.call(element);
    }""", selector)


CLOBBERING_LANDING = """<!doctype html><html><head><meta charset="utf-8"><title>Reviews</title></head><body>
<p>Call us: <strong id="phone">(415) 555-0100</strong></p>
<div id="reviews">{reviews}</div>
<script async src="{live}/static/calltrack/dni.js" data-api="{live}" data-pool="demo"></script>
</body></html>"""
# A visitor's review, HTML that a sanitizer lets through (no script, no event handler): its named image shadows
# document.currentScript, the element the tag used to read its settings from.
CURRENT_SCRIPT_REVIEW = f'<img name="currentScript" alt="" data-api="{ATTACKER}" data-pool="demo" data-number="+14155550100">'
# Every other document property the tag reads, and the window.calltrack_params it accepts, shadowed the same way.
EVERY_PROPERTY_REVIEW = CURRENT_SCRIPT_REVIEW + "".join(
    f'<img name="{name}" alt="">' for name in (
        "cookie", "referrer", "body", "documentElement", "readyState", "querySelector", "createTreeWalker",
        "getElementsByTagName",
    )
) + f'<a id="calltrack_params" href="{ATTACKER}/?plan=evil">a link</a>'


@pytest.mark.parametrize("reviews", [CURRENT_SCRIPT_REVIEW, EVERY_PROPERTY_REVIEW], ids=["current-script", "every-property"])
def test_page_elements_that_shadow_document_properties_never_send_the_visitor_elsewhere_nor_show_another_number(
    live_server, page, demo_pool, reviews
):
    elsewhere = watch_the_hosts(page, live_server)
    page.goto(serve(page, live_server, CLOBBERING_LANDING.format(live=live_server.url, reviews=reviews)))
    page.wait_for_function("""() => !Object.getOwnPropertyDescriptor(Node.prototype, 'textContent')
      .get.call(Document.prototype.getElementById.call(document, 'phone')).includes('555-0100')""")

    assert shown(page, "#phone") == "(415) 200-0001"  # the pool's number, from calltrack
    assert elsewhere == []
    page.wait_for_timeout(300)
    assert elsewhere == [] and "555-0666" not in page.content()
    visitor = next(c["value"] for c in page.context.cookies() if c["name"] == "_ct_vid")
    session = NumberSession.objects.get(visitor_id=visitor)
    assert session.tracking_number.number == "+14152000001"
    assert session.referrer == "" and session.marketing_data == {}  # nothing from the shadowing elements


MODULE_LANDING = """<!doctype html><html><head><meta charset="utf-8"><title>Module</title>
<script type="module" src="{live}/static/calltrack/dni.js" data-api="{live}" data-pool="demo"></script>
</head><body>
<p>Call us: <strong id="phone">(415) 555-0100</strong></p>
<div id="reviews"></div>
<script>document.getElementById("reviews").innerHTML = {reviews};</script>
</body></html>"""
# Page content that looks like the tag: a <script> inserted as HTML (innerHTML), which never loads nor runs.
DECOY = f'<script src="{ATTACKER}/static/calltrack/dni.js" data-api="{ATTACKER}" data-pool="demo"></script>'


def test_a_tag_loaded_as_a_module_finds_its_script_by_its_url_unless_page_content_holds_another(live_server, page, demo_pool):
    # A module script has no document.currentScript: the tag takes the one script whose URL is a dni.js.
    elsewhere = watch_the_hosts(page, live_server)
    page.goto(serve(page, live_server, MODULE_LANDING.format(live=live_server.url, reviews='""')))
    page.wait_for_function("() => !document.getElementById('phone').textContent.includes('555-0100')")
    assert page.inner_text("#phone") == "(415) 200-0001"

    # With a second one on the page, it cannot tell which is its own: the page keeps its number, nothing is sent.
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.goto(serve(page, live_server, MODULE_LANDING.format(live=live_server.url, reviews=json.dumps(DECOY).replace("</", "<\\/")), path="/landing/2/"))
    page.wait_for_load_state("networkidle")
    assert page.inner_text("#phone") == "(415) 555-0100"
    assert not [url for url in requests if "/dni/v1/" in url]
    assert page.evaluate("() => document.scripts.length") == 3  # the tag, the inline script and the decoy
    assert elsewhere == []


FIGHTING_LANDING = """<!doctype html><html><head><meta charset="utf-8"><title>Two tags</title>
<script async src="{live}/static/calltrack/dni.js" data-api="{live}" data-pool="demo"></script>
</head><body>
<p>Call us: <strong id="phone">(415) 555-0100</strong></p>
<script>
  // Another script (another vendor's tag, a framework) that puts its number back whenever it changes.
  var phone = document.getElementById("phone");
  new MutationObserver(function () {{
    if (phone.textContent !== "(415) 555-0100") {restore};
  }}).observe(phone, {{ childList: true, characterData: true, subtree: true }});
</script>
</body></html>"""


@pytest.mark.parametrize("restore", ['phone.firstChild.nodeValue = "(415) 555-0100"', 'phone.textContent = "(415) 555-0100"'],
                         ids=["same-text-node", "new-text-node"])
def test_a_page_that_writes_its_number_back_on_every_change_keeps_it_and_stays_responsive(
    live_server, page, demo_pool, restore
):
    page.add_init_script(WATCH_THE_MAIN_THREAD)
    with page.expect_response(re.compile(r"/dni/v1/assign$")) as answer:
        page.goto(serve(page, live_server, FIGHTING_LANDING.format(live=live_server.url, restore=restore)), wait_until="commit")
    assert answer.value.status == 200
    ticks: list[str] = []
    page.on("console", lambda message: ticks.append(message.text))
    page.wait_for_timeout(1_000)  # Playwright's own timer: it does not need the page
    assert ticks.count("tick") >= 5, "the page's main thread stopped answering"

    # The tag gave up after its writes for the second: the observers are quiet, the page shows its own number.
    settled = page.evaluate("() => window.__observed")
    page.wait_for_timeout(500)
    assert page.evaluate("() => window.__observed") == settled
    assert settled < 1_000
    assert page.inner_text("#phone") == "(415) 555-0100"


def test_a_big_render_of_many_numbers_at_once_is_swapped_in_one_pass(live_server, page, demo_pool):
    page.add_init_script(WATCH_THE_MAIN_THREAD)
    page.goto(serve(page, live_server, CLOBBERING_LANDING.format(live=live_server.url, reviews="")))
    page.wait_for_function("() => document.getElementById('phone').textContent === '(415) 200-0001'")
    before = page.evaluate("() => window.__observed")

    # 500 nodes in one batch (past the tag's 200 roots): one pass over the page swaps every one of them.
    page.evaluate("""() => {
      const list = document.createElement('ul');
      for (let i = 0; i < 500; i++) {
        const item = list.appendChild(document.createElement('li'));
        item.append('Branch ' + i + ': ', Object.assign(document.createElement('a'), {href: 'tel:+14155550100', textContent: '415-555-0100'}));
      }
      const parts = Array.from(list.children);
      parts.forEach((item) => document.getElementById('reviews').appendChild(item));
    }""")
    page.wait_for_function("() => !document.getElementById('reviews').textContent.includes('555-0100')")
    assert page.evaluate("() => document.querySelectorAll('#reviews a[href=\"tel:+14152000001\"]').length") == 500
    assert page.evaluate("() => new Set(Array.from(document.querySelectorAll('#reviews a'), (a) => a.textContent)).size") == 1
    assert page.inner_text("#reviews li:last-child a") == "415-200-0001"
    assert page.evaluate("() => window.__observed") - before <= 2
