"""POST /dni/v1/assign and /dni/v1/heartbeat: JSON in and out, readable errors, CORS, rate limits."""

from __future__ import annotations

import json

import pytest

from calltrack.numbers.models import NumberSession
from tests.numbers.factories import NumberPoolFactory, TrackingNumberFactory

pytestmark = pytest.mark.django_db

ASSIGN = "/dni/v1/assign"
HEARTBEAT = "/dni/v1/heartbeat"


@pytest.fixture
def pool():
    pool = NumberPoolFactory(key="main", allowed_origins="https://www.acme.example\nhttps://shop.acme.example/")
    for n in ("+14152000001", "+14152000002", "+18002000001"):
        TrackingNumberFactory(number=n, kind="pool", pool=pool, campaign=pool.campaign)
    return pool


def post(client, path, body, **headers):
    """A browser's POST: with an Origin header (our own site unless the test names another)."""
    data = body if isinstance(body, (str, bytes)) else json.dumps(body)
    headers.setdefault("HTTP_ORIGIN", "https://www.acme.example")
    return client.post(path, data=data, content_type="text/plain", **headers)


def assign_body(**overrides):
    body = {
        "pool": "main",
        "visitor_id": "v-0123456789",
        "page_url": "https://www.acme.example/plumbing?utm_source=google&utm_medium=cpc&gclid=xyz",
        "referrer": "https://www.google.com/",
        "params": {"utm_source": "google", "utm_medium": "cpc", "gclid": "xyz"},
        "destination": "(415) 555-0100",
    }
    body.update(overrides)
    return body


def test_assign_answers_the_number_in_e164_and_in_the_pages_format(client, pool):
    response = post(client, ASSIGN, assign_body())

    assert response.status_code == 200, response.content
    data = response.json()
    assert data["number"] in ("+14152000001", "+14152000002")
    assert data["formatted"] == "(415) " + data["number"][5:8] + "-" + data["number"][8:]
    assert data["national"] == data["number"][2:] and data["country_code"] == "1"
    assert data["overflow"] is False
    assert data["visitor_id"] == "v-0123456789"
    assert data["expires_at"].endswith("Z")
    session = NumberSession.objects.get(pk=data["session_id"])
    assert session.marketing_data == {"utm_source": "google", "utm_medium": "cpc", "gclid": "xyz"}
    assert session.landing_page.startswith("https://www.acme.example/plumbing")
    assert session.referrer == "https://www.google.com/"
    assert session.destination_number == "+14155550100"
    assert session.ip_address == "127.0.0.1"
    assert response["Cache-Control"] == "no-store"


def test_assign_reads_utm_parameters_from_the_page_url_when_the_tag_sends_none(client, pool):
    body = assign_body()
    del body["params"]
    data = post(client, ASSIGN, body).json()
    assert NumberSession.objects.get(pk=data["session_id"]).marketing_data == {"utm_source": "google", "utm_medium": "cpc", "gclid": "xyz"}


def test_same_visitor_gets_the_same_number_and_session(client, pool):
    first = post(client, ASSIGN, assign_body()).json()
    second = post(client, ASSIGN, assign_body(page_url="https://www.acme.example/contact")).json()
    assert (second["number"], second["session_id"]) == (first["number"], first["session_id"])


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ("{not json", "body", "not valid JSON"),
        ("[1, 2]", "body", "expected a JSON object"),
        ({"visitor_id": "v-0123456789"}, "pool", "is required"),
        (assign_body(pool="no spaces allowed"), "pool", "is not a pool key"),
        (assign_body(visitor_id="short"), "visitor_id", "8 to 64"),
        (assign_body(visitor_id=12345678), "visitor_id", "must be a string"),
        (assign_body(destination="12"), "destination", "is not a valid phone number"),
        (assign_body(page_url="javascript:alert(1)"), "page_url", "is not an http(s) URL"),
        (assign_body(params=["utm_source"]), "params", "must be an object"),
        (assign_body(params={"utm_source": 3}), "params.utm_source", "must be a string"),
    ],
)
def test_malformed_input_gets_a_400_naming_the_field_and_why(client, pool, body, field, words):
    response = post(client, ASSIGN, body)
    assert response.status_code == 400
    data = response.json()
    assert data["field"] == field
    assert words in data["error"]
    assert not NumberSession.objects.exists()


def test_unknown_or_disabled_pool_gets_a_404(client, pool):
    assert post(client, ASSIGN, assign_body(pool="nope")).status_code == 404
    pool.enabled = False
    pool.save()
    response = post(client, ASSIGN, assign_body())
    assert response.status_code == 404
    assert "No enabled number pool with key 'main'" in response.json()["error"]


def test_only_post_is_allowed(client, pool):
    response = client.get(ASSIGN)
    assert response.status_code == 405
    assert response["Allow"] == "POST, OPTIONS"


def test_cors_answers_the_pools_origins_and_no_other(client, pool):
    allowed = post(client, ASSIGN, assign_body(), HTTP_ORIGIN="https://shop.acme.example")
    assert allowed.status_code == 200
    assert allowed["Access-Control-Allow-Origin"] == "https://shop.acme.example"
    assert allowed["Vary"] == "Origin"

    refused = post(client, ASSIGN, assign_body(visitor_id="v-other-visitor"), HTTP_ORIGIN="https://evil.example")
    assert refused.status_code == 403
    assert "not allowed for pool 'main'" in refused.json()["error"]
    assert "Access-Control-Allow-Origin" not in refused
    assert NumberSession.objects.count() == 1  # the refused origin drained nothing


def test_the_apps_own_pages_may_assign_without_listing_their_origin(client, pool):
    response = post(client, ASSIGN, assign_body(), HTTP_ORIGIN="http://testserver")
    assert response.status_code == 200


def test_preflight_is_answered_for_configured_origins_only(client, pool):
    ok = client.options(ASSIGN, HTTP_ORIGIN="https://www.acme.example", HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST")
    assert ok.status_code == 204
    assert ok["Access-Control-Allow-Origin"] == "https://www.acme.example"
    assert "POST" in ok["Access-Control-Allow-Methods"]
    no = client.options(ASSIGN, HTTP_ORIGIN="https://evil.example", HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST")
    assert "Access-Control-Allow-Origin" not in no


def test_rate_limit_per_ip_answers_429_with_retry_after(client, pool, settings):
    settings.CALLTRACK_DNI_RATE_LIMIT_IP = "3/minute"
    codes = [post(client, ASSIGN, assign_body(visitor_id=f"v-visitor-{i:04d}")).status_code for i in range(4)]
    assert codes == [200, 200, 200, 429]
    response = post(client, ASSIGN, assign_body(visitor_id="v-visitor-9999"))
    assert response.status_code == 429
    assert "more than 3 per minute from this IP address" in response.json()["error"]
    assert 1 <= int(response["Retry-After"]) <= 60
    # Another client (behind our one proxy hop) still gets numbers.
    settings.CALLTRACK_PROXY_HOPS = 1
    other = post(client, ASSIGN, assign_body(visitor_id="v-visitor-8888"), HTTP_X_FORWARDED_FOR="198.51.100.7")
    assert other.status_code == 200
    assert NumberSession.objects.get(pk=other.json()["session_id"]).ip_address == "198.51.100.7"


def test_rate_limit_per_visitor_stops_one_visitor_but_not_others(client, pool, settings):
    settings.CALLTRACK_DNI_RATE_LIMIT_VISITOR = "2/minute"
    codes = [post(client, ASSIGN, assign_body()).status_code for _ in range(3)]
    assert codes == [200, 200, 429]
    assert "from this visitor" in post(client, ASSIGN, assign_body()).json()["error"]
    assert post(client, ASSIGN, assign_body(visitor_id="v-someone-else")).status_code == 200


def test_an_empty_rate_setting_turns_the_limit_off(client, pool, settings):
    settings.CALLTRACK_DNI_RATE_LIMIT_VISITOR = ""
    settings.CALLTRACK_DNI_RATE_LIMIT_IP = ""
    assert {post(client, ASSIGN, assign_body()).status_code for _ in range(40)} == {200}


def test_heartbeat_extends_the_session_and_says_when_it_has_ended(client, pool):
    data = post(client, ASSIGN, assign_body()).json()
    ok = post(client, HEARTBEAT, {"pool": "main", "visitor_id": "v-0123456789", "session_id": data["session_id"]})
    assert ok.status_code == 200
    assert ok.json()["number"] == data["number"]
    assert ok.json()["expires_at"] >= data["expires_at"]

    NumberSession.objects.filter(pk=data["session_id"]).update(expires_at="2000-01-01T00:00:00Z")
    gone = post(client, HEARTBEAT, {"pool": "main", "visitor_id": "v-0123456789", "session_id": data["session_id"]})
    assert gone.status_code == 410
    assert "ask /dni/v1/assign" in gone.json()["error"]


def test_heartbeat_needs_a_session_id(client, pool):
    response = post(client, HEARTBEAT, {"pool": "main", "visitor_id": "v-0123456789", "session_id": "abc"})
    assert response.status_code == 400
    assert response.json()["field"] == "session_id"


def test_demo_page_uses_the_tag_on_the_pool_of_the_query(client, settings):
    settings.CALLTRACK_DNI_DEMO = True
    response = client.get("/dni/demo/?pool=spring-sale")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-pool="spring-sale"' in html
    assert "calltrack/dni.js" in html
    assert 'data-pool="demo"' in client.get("/dni/demo/").content.decode()


def test_demo_page_is_off_unless_enabled(client, settings):
    settings.CALLTRACK_DNI_DEMO = False
    assert client.get("/dni/demo/").status_code == 404
