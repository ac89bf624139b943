"""A landing page's custom parameters reach the call: as tags that routing's tag criteria match, in webhook
tokens, on the call page, in the call log's tag filter (admin and API) and in its CSV export."""

from __future__ import annotations

import csv
import io
import json

import pytest
from django.core.cache import cache
from django.urls import reverse
from lxml import etree

from calltrack.numbers.services import records
from tests.numbers.factories import NumberPoolFactory, TrackingNumberFactory
from tests.tracking.factories import CampaignFactory, CampaignHandlerFactory, HandlerFactory, WebhookFactory
from tracking.models import Call
from tracking.services.webhooks import webhook_render

pytestmark = pytest.mark.django_db


@pytest.fixture
def setup():
    cache.clear()
    campaign = CampaignFactory(name="Insurance")
    gold = HandlerFactory(name="Gold desk", tag_criteria=[{"key": "plan", "op": "equals", "value": "gold"}])
    silver = HandlerFactory(name="Silver desk", tag_criteria=[{"key": "plan", "op": "equals", "value": "silver"}])
    for h in (silver, gold):
        CampaignHandlerFactory(campaign=campaign, handler=h)
    pool = NumberPoolFactory(key="quotes", campaign=campaign)
    TrackingNumberFactory(number="+14152000001", kind="pool", pool=pool, campaign=campaign)
    records.pool_parameters_set(pool=pool, entries=[
        {"name": "plan", "kind": "text", "max_length": 20}, {"name": "lead_score", "kind": "integer", "max_length": 4},
    ])
    yield campaign, gold, silver
    cache.clear()


def visit_and_call(client, twilio, custom, sid="CA" + "1" * 32):
    body = {"pool": "quotes", "visitor_id": "v-custom-0001", "page_url": "https://quotes.example/?utm_source=bing",
            "params": {"utm_source": "bing"}, "custom": custom}
    answer = client.post("/dni/v1/assign", data=json.dumps(body), content_type="text/plain", HTTP_ORIGIN="http://testserver")
    assert answer.status_code == 200, answer.content
    response = twilio.post("/voice/incoming", {"CallSid": sid, "From": "+13035550142", "To": answer.json()["number"]})
    assert response.status_code == 200
    return etree.fromstring(response.content), Call.objects.get(call_sid=sid)


def test_a_custom_parameter_arrives_as_a_tag_that_routing_criteria_match(client, twilio, setup):
    _, gold, _ = setup
    doc, call = visit_and_call(client, twilio, {"plan": "gold", "lead_score": "87", "ignored": "x"})
    assert [n.text for n in doc.findall("Dial/Number")] == [gold.receiving_number.number]
    assert call.tags["plan"] == "gold" and call.tags["lead_score"] == "87" and "ignored" not in call.tags
    assert call.marketing_data == {"utm_source": "bing", "plan": "gold", "lead_score": "87"}


def test_webhook_tokens_read_the_custom_parameters(client, twilio, setup):
    campaign, _, _ = setup
    _, call = visit_and_call(client, twilio, {"plan": "silver", "lead_score": 12})
    hook = WebhookFactory(campaign=campaign, url="https://crm.example/lead?plan=[tag:plan]",
                          body_template='{"score": "[data:lead_score]", "plan": "[tag:plan]"}')
    rendered = webhook_render(webhook=hook, call=call, event="call.completed")
    assert rendered.url == "https://crm.example/lead?plan=silver"
    assert json.loads(rendered.body) == {"score": "12", "plan": "silver"}


def test_the_call_page_the_call_log_filter_and_the_export_show_them(admin_client, client, twilio, setup):
    _, call = visit_and_call(client, twilio, {"plan": "gold", "lead_score": "5"})
    visit_and_call(client, twilio, {"plan": "silver"}, sid="CA" + "2" * 32)

    page = admin_client.get(reverse("admin:tracking_call_change", args=[call.pk])).content.decode()
    assert "<dt>plan</dt><dd>gold</dd>" in page and "<dt>lead_score</dt><dd>5</dd>" in page

    changelist = reverse("admin:tracking_call_changelist")
    listed = admin_client.get(changelist, {"tag": "plan:gold"})
    assert listed.status_code == 200
    assert [c.pk for c in listed.context["cl"].result_list] == [call.pk]
    assert "plan = silver" in admin_client.get(changelist, {"tag": "plan"}).content.decode()  # the values to choose from
    assert admin_client.get(changelist, {"tag": "no such tag"}).status_code in (200, 302)  # the admin's "bad filter" page, not a 500

    exported = admin_client.get(reverse("admin:tracking_call_export"))
    assert exported["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(b"".join(exported.streaming_content).decode("utf-8-sig"))))
    assert {r["call_sid"]: r["tag:plan"] for r in rows} == {call.call_sid: "gold", "CA" + "2" * 32: "silver"}
    assert {r["call_sid"]: r["tag:lead_score"] for r in rows}[call.call_sid] == "5"


def test_the_api_filters_calls_by_tag_and_refuses_a_bad_tag_filter(admin_client, client, twilio, setup):
    _, call = visit_and_call(client, twilio, {"plan": "gold"})
    visit_and_call(client, twilio, {"plan": "silver"}, sid="CA" + "2" * 32)
    found = admin_client.get("/api/v1/calls/", {"tag": "plan:gold"})
    assert found.status_code == 200
    assert [c["call_sid"] for c in found.json()["results"]] == [call.call_sid]
    assert len(admin_client.get("/api/v1/calls/", {"tag": "plan"}).json()["results"]) == 2
    # Tags named like a lookup are keys like any other.
    assert admin_client.get("/api/v1/calls/", {"tag": "contains:gold"}).json()["results"] == []
    assert admin_client.get("/api/v1/calls/", {"tag": "exact"}).json()["results"] == []
    for bad in ("bad name", "plan:go\x00ld", "x" * 65):
        response = admin_client.get("/api/v1/calls/", {"tag": bad})
        assert response.status_code == 400, bad
        assert "tag" in response.json()
