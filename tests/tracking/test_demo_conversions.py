"""The demo conversions: real rules over the demo calls, every outcome shown once."""

from __future__ import annotations

from decimal import Decimal

import pytest

from calltrack.demo import demo_load
from calltrack.demo_conversions import DEMO_SID, demo_conversions_load
from tracking.models import Call, ConversionStatus, ConversionUpload, Webhook, WebhookAttempt, WebhookDelivery

pytestmark = pytest.mark.django_db


def test_demo_conversions_show_each_outcome_and_load_twice_the_same():
    demo_load(calls=30)
    counts = demo_conversions_load()
    assert demo_conversions_load() == counts
    assert counts["converted"] > 0 and counts["not_converted"] > 0 and counts["pending"] > 0
    assert not Call.objects.filter(conversion_evaluated_at__isnull=True, status="completed").exists()
    demo = {c.call_sid[-1]: c for c in Call.objects.filter(call_sid__startswith=DEMO_SID)}
    assert demo["0"].revenue_converted and demo["0"].payout_converted and demo["0"].margin == Decimal("40.00")
    assert demo["1"].conversion_status == ConversionStatus.CONVERTED and demo["1"].conversion_reason.startswith("waiting for the handler's postback")
    assert demo["2"].conversion_status == ConversionStatus.PENDING and demo["2"].payout_reason == "connected 30 s, under the 60 s timer"
    assert demo["3"].payout_reason.startswith(f"repeat caller: call #{demo['0'].pk}")
    assert demo["4"].revenue == Decimal("35.00")  # New York's own timer terms
    assert demo["5"].conversion_reason == "postback came 1800 min after the call ended; the limit is 1440 min"
    # The local destination recorded what the ad platforms would get, for each call converted on the payout side, once.
    uploads = {u.call.call_sid[-1]: u for u in ConversionUpload.objects.select_related("call").filter(call__call_sid__startswith=DEMO_SID)}
    assert set(uploads) == {k for k, c in demo.items() if c.payout_converted}
    assert {u.status for u in uploads.values()} == {"sent"}
    assert uploads["0"].payload["click_ids"] == {"fbclid": "IwAR-demo-0"} and uploads["0"].payload["value"] == "20.00"


def test_admin_pages_show_conversions_and_deliveries(admin_client):
    demo_load(calls=5)
    demo_conversions_load()
    call = Call.objects.get(call_sid=f"{DEMO_SID}{0:026d}")
    hook = Webhook.objects.get(campaign=call.campaign)
    delivery = WebhookDelivery.objects.create(webhook=hook, call=call, event="call.completed", url=hook.url, status="failed", attempts=5)
    WebhookAttempt.objects.create(delivery=delivery, number=1, status_code=503, response_excerpt="busy, try later", outcome="failed")
    page = admin_client.get(f"/admin/tracking/call/{call.pk}/change/")
    assert page.status_code == 200
    assert b"Webhook deliveries" in page.content and b"busy, try later" in page.content
    response = admin_client.post(
        "/admin/tracking/call/", {"action": "resend_failed_webhooks", "_selected_action": [call.pk]}, follow=True
    )
    assert b"1 deliveries queued again" in response.content
    delivery.refresh_from_db()
    assert delivery.status == "pending" and delivery.attempts == 0
    handler_page = admin_client.get(f"/admin/tracking/handler/{call.handler_id}/change/")
    assert b"/postback/" in handler_page.content


def test_the_webhook_admin_refuses_unknown_tokens_and_saves_events_as_a_list(admin_client):
    demo_load(calls=1)
    demo_conversions_load()
    hook = Webhook.objects.get(campaign__campaign_id="home-warranty")
    data = {
        "campaign": hook.campaign_id, "name": "x", "enabled": "on", "events": ["call.completed"], "url": "http://127.0.0.1:8099/x?c=[caler]",
        "method": "POST_JSON", "body_template": "", "secret": "s3cret",
    }
    page = admin_client.post(f"/admin/tracking/webhook/{hook.pk}/change/", data)
    assert page.status_code == 200 and b"Unknown token [caler] in the URL" in page.content
    data["url"] = "http://127.0.0.1:8099/x?c=[caller_number]"
    assert admin_client.post(f"/admin/tracking/webhook/{hook.pk}/change/", data).status_code == 302
    hook.refresh_from_db()
    assert hook.events == ["call.completed"]


def test_the_campaign_admin_refuses_two_kinds_of_rule_on_one_side():
    from django.forms import inlineformset_factory

    from tests.tracking.factories import CampaignFactory
    from tracking.admin import ConversionRuleFormSet
    from tracking.models import Campaign, ConversionRule

    fields = ["handler", "side", "kind", "min_duration", "revenue", "payout", "postback_window", "dedupe_window", "dedupe_scope"]
    FormSet = inlineformset_factory(Campaign, ConversionRule, formset=ConversionRuleFormSet, fields=fields, extra=0)
    row = {"handler": "", "side": "both", "min_duration": "0", "revenue": "5", "payout": "1", "postback_window": "1440", "dedupe_window": "", "dedupe_scope": "campaign"}
    data = {"conversion_rules-TOTAL_FORMS": "2", "conversion_rules-INITIAL_FORMS": "0"}
    for i, kind in enumerate(["timer", "attempt"]):
        data.update({f"conversion_rules-{i}-{k}": v for k, v in {**row, "kind": kind}.items()})
    formset = FormSet(data, instance=CampaignFactory())
    assert not formset.is_valid()
    assert "rules of different kinds (attempt, timer)" in formset.non_form_errors()[0]
    data["conversion_rules-1-side"] = "payout"
    data["conversion_rules-0-side"] = "revenue"
    data["conversion_rules-0-payout"] = "0"
    data["conversion_rules-1-revenue"] = "0"
    assert FormSet(data, instance=CampaignFactory()).is_valid()
