"""Conversions sent back to the ad platforms from the voice path: a DNI visitor with a click id calls through the signed
webhooks, converts, and the platform receives the documented upload once; a campaign without destinations costs the
status callback no statement; two workers at once send once (PostgreSQL)."""

from __future__ import annotations

import json
import threading
from decimal import Decimal

import pytest
from django.core.cache import cache
from django.db import connection
from lxml import etree

from tests.numbers.factories import NumberPoolFactory, TrackingNumberFactory
from tests.routing.test_voice_queries import answered_call, campaign_with, status_completed
from tests.tracking.factories import CampaignFactory, CampaignHandlerFactory, ConversionRuleFactory, HandlerFactory
from tests.tracking.google_ads_fake import install, types
from tests.tracking.receiver import receiver, run_queued_tasks
from tracking.models import Call, ConversionDestination, ConversionUpload, UploadStatus
from tracking.services.ad_uploads import conversion_upload_attempt, conversion_uploads_queue

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _receivers_allowed(settings):
    settings.CALLTRACK_OUTBOUND_ALLOW = ["127.0.0.1"]
    settings.CALLTRACK_WEBHOOK_TIMEOUT = 2


def test_a_dni_visitor_with_a_gclid_calls_converts_and_google_ads_gets_the_upload_once(client, twilio, settings, django_capture_on_commit_callbacks, monkeypatch):
    cache.clear()
    campaign = CampaignFactory(name="Quotes")
    CampaignHandlerFactory(campaign=campaign, handler=HandlerFactory(name="Desk"))
    ConversionRuleFactory(campaign=campaign, min_duration=60, revenue=Decimal("35"), payout=Decimal("10"))
    pool = NumberPoolFactory(key="ads", campaign=campaign)
    TrackingNumberFactory(number="+14152000009", kind="pool", pool=pool, campaign=campaign)
    ConversionDestination.objects.create(
        campaign=campaign, name="Google", kind="google_ads", account_id="1234567890", conversion_action="77", account_timezone="UTC",
        credentials={"developer_token": "d", "client_id": "c", "client_secret": "s", "refresh_token": "r"})
    body = {"pool": "ads", "visitor_id": "v-ads-000001", "page_url": "https://quotes.example/?gclid=TeSt_gclid-1",
            "params": {"gclid": "TeSt_gclid-1", "ga_client_id": "123.456"}}
    number = client.post("/dni/v1/assign", data=json.dumps(body), content_type="text/plain", HTTP_ORIGIN="http://testserver").json()["number"]
    sid = "CA" + "a" * 32
    doc = etree.fromstring(twilio.post("/voice/incoming", {"CallSid": sid, "From": "+14155550123", "To": number}).content)
    twilio.post(doc.find("Dial").get("action"), {"CallSid": sid, "DialCallStatus": "completed", "DialCallDuration": "90"})
    gads = install(monkeypatch)
    upload = types("conversion_upload_service")
    gads.answer(upload.UploadClickConversionsResponse(results=[upload.ClickConversionResult(gclid="TeSt_gclid-1")]))
    with receiver((200, 0, b'{"access_token": "tok"}')) as rx:
        settings.CALLTRACK_AD_PLATFORM_URLS = {**settings.CALLTRACK_AD_PLATFORM_URLS, "google_token": f"http://127.0.0.1:{rx.port}/token"}
        with django_capture_on_commit_callbacks(execute=True):
            assert status_completed(twilio, sid).status_code == 200
        run_queued_tasks()
        # The status callback again (Twilio retries): nothing more.
        with django_capture_on_commit_callbacks(execute=True):
            status_completed(twilio, sid)
        run_queued_tasks()
    call = Call.objects.get(call_sid=sid)
    assert call.converted and call.marketing_data["ga_client_id"] == "123.456"
    assert len(rx.requests) == 1 and len(gads.sent) == 1
    assert gads.sent[0].request(upload.UploadClickConversionsRequest) == upload.UploadClickConversionsRequest(
        customer_id="1234567890", partial_failure=True, conversions=[upload.ClickConversion(
            conversion_action="customers/1234567890/conversionActions/77",
            conversion_date_time=call.converted_at.strftime("%Y-%m-%d %H:%M:%S+00:00"),
            conversion_value=35.0, currency_code="USD", order_id=f"call-{call.pk}", gclid="TeSt_gclid-1")])
    assert call.conversion_uploads.get().status == UploadStatus.SENT


def test_a_ga_client_id_that_is_not_one_is_not_kept(client):
    cache.clear()
    campaign = CampaignFactory()
    pool = NumberPoolFactory(key="ga", campaign=campaign)
    TrackingNumberFactory(number="+14152000010", kind="pool", pool=pool, campaign=campaign)
    body = {"pool": "ga", "visitor_id": "v-ga-0000001", "page_url": "https://x.example/", "params": {"ga_client_id": "<b>1.2</b>"}}
    answer = client.post("/dni/v1/assign", data=json.dumps(body), content_type="text/plain", HTTP_ORIGIN="http://testserver")
    assert answer.status_code == 200
    from calltrack.numbers.models import NumberSession

    assert "ga_client_id" not in NumberSession.objects.get(visitor_id="v-ga-0000001").marketing_data


@pytest.mark.postgres
def test_a_destination_costs_the_status_callback_no_statement_and_none_without_destinations(twilio, django_assert_num_queries):
    """The budget of test_voice_queries' status callback (5 statements, the campaign's rules cached), with and without a
    destination: whether the campaign sends comes with its cached configuration; the upload is queued after the commit."""
    for with_destination in (False, True):
        tn = campaign_with(2)
        ConversionRuleFactory(campaign=tn.campaign, min_duration=60, revenue=Decimal("20"))
        if with_destination:
            ConversionDestination.objects.create(campaign=tn.campaign, name="Local")
        answered_call(twilio, tn, f"CAwarm{with_destination}")
        status_completed(twilio, f"CAwarm{with_destination}")
        answered_call(twilio, tn, f"CAbudget{with_destination}")
        with django_assert_num_queries(5):
            assert status_completed(twilio, f"CAbudget{with_destination}").status_code == 200


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("kind", ["ga4", "meta", "microsoft"])
def test_two_workers_at_once_send_an_upload_once(settings, kind):
    from tests.tracking.test_ad_uploads import converted_call

    params, fields, script = PLATFORMS[kind]
    campaign = CampaignFactory()
    ConversionDestination.objects.create(campaign=campaign, name=kind, kind=kind, **fields)
    call = converted_call(campaign, marketing=params)
    conversion_uploads_queue(call_id=call.pk)  # outside a transaction: the task is queued at once
    upload = ConversionUpload.objects.get(call=call)
    # A slow platform: the first worker holds the row lock while it waits for the answer.
    *first, (status, _, answer) = script
    with receiver(*first, (status, 0.5, answer)) as rx:
        base = f"http://127.0.0.1:{rx.port}"
        settings.CALLTRACK_AD_PLATFORM_URLS = {"google_token": f"{base}/g", "ga4": base, "meta": base, "microsoft": base,
                                               "microsoft_token": f"{base}/token"}
        barrier = threading.Barrier(2)
        results: list = []

        def worker() -> None:
            try:
                barrier.wait()
                results.append(conversion_upload_attempt(upload_id=upload.pk))
            finally:
                connection.close()

        threads = [threading.Thread(target=worker) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
        # And a third, later (the queued task, a sweep): finds it sent.
        conversion_upload_attempt(upload_id=upload.pk)
    assert len(rx.requests) == len(script)
    assert sorted(r is None for r in results) == [False, True]  # one sent, one skipped the locked row
    upload.refresh_from_db()
    assert (upload.status, upload.attempts) == (UploadStatus.SENT, 1)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_workers_at_once_upload_to_google_ads_once_through_the_library(settings, monkeypatch):
    from tests.tracking.test_ad_uploads import GOOGLE_CREDS, converted_call

    campaign = CampaignFactory()
    ConversionDestination.objects.create(campaign=campaign, name="Google", kind="google_ads", account_id="1234567890",
                                         conversion_action="77", credentials=GOOGLE_CREDS)
    call = converted_call(campaign, marketing={"gclid": "G-race"})
    conversion_uploads_queue(call_id=call.pk)
    upload = ConversionUpload.objects.get(call=call)
    gads = install(monkeypatch)
    gads.delay = 0.5  # the first worker holds the row lock while Google answers
    messages = types("conversion_upload_service")
    gads.answer(*[messages.UploadClickConversionsResponse(results=[messages.ClickConversionResult(gclid="G-race")])] * 3)
    with receiver((200, 0, b'{"access_token": "tok"}')) as rx:
        settings.CALLTRACK_AD_PLATFORM_URLS = {**settings.CALLTRACK_AD_PLATFORM_URLS, "google_token": f"http://127.0.0.1:{rx.port}/token"}
        barrier = threading.Barrier(2)
        results: list = []

        def worker() -> None:
            try:
                barrier.wait()
                results.append(conversion_upload_attempt(upload_id=upload.pk))
            finally:
                connection.close()

        threads = [threading.Thread(target=worker) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
        conversion_upload_attempt(upload_id=upload.pk)  # the queued task, later: finds it sent
    assert len(gads.sent) == 1 and len(rx.requests) == 1
    assert sorted(r is None for r in results) == [False, True]
    upload.refresh_from_db()
    assert (upload.status, upload.attempts, upload.platform_id) == (UploadStatus.SENT, 1, f"call-{call.pk}")


def test_consent_reported_by_the_landing_page_through_the_pools_parameters_decides_what_is_sent(client, twilio, django_capture_on_commit_callbacks):
    from calltrack.numbers.services import records

    cache.clear()
    campaign = CampaignFactory()
    CampaignHandlerFactory(campaign=campaign, handler=HandlerFactory())
    ConversionRuleFactory(campaign=campaign, min_duration=60, revenue=Decimal("35"))
    pool = NumberPoolFactory(key="consent", campaign=campaign)
    for number in ("+14152000021", "+14152000022"):
        TrackingNumberFactory(number=number, kind="pool", pool=pool, campaign=campaign)
    records.pool_parameters_set(pool=pool, entries=[{"name": "consent", "kind": "text", "max_length": 20}])
    ConversionDestination.objects.create(campaign=campaign, name="Local", consent_required=True)
    calls = {}
    for visitor, custom in (("v-consent-yes1", {"consent": "granted"}), ("v-consent-no01", {})):
        body = {"pool": "consent", "visitor_id": visitor, "page_url": "https://x.example/?gclid=G1", "params": {"gclid": "G1"}, "custom": custom}
        number = client.post("/dni/v1/assign", data=json.dumps(body), content_type="text/plain", HTTP_ORIGIN="http://testserver").json()["number"]
        sid = f"CA{visitor[-3:]:0>32}"
        doc = etree.fromstring(twilio.post("/voice/incoming", {"CallSid": sid, "From": "+14155550123", "To": number}).content)
        twilio.post(doc.find("Dial").get("action"), {"CallSid": sid, "DialCallStatus": "completed", "DialCallDuration": "90"})
        with django_capture_on_commit_callbacks(execute=True):
            status_completed(twilio, sid)
        run_queued_tasks()
        calls[visitor] = Call.objects.get(call_sid=sid)
    sent = calls["v-consent-yes1"].conversion_uploads.get()
    refused = calls["v-consent-no01"].conversion_uploads.get()
    assert (sent.status, sent.payload["click_ids"]) == (UploadStatus.SENT, {"gclid": "G1"})
    assert (refused.status, refused.reason) == (UploadStatus.NOT_ELIGIBLE, "no consent: the visitor's landing page did not report consent=granted")
    assert refused.payload == {}


PLATFORMS = {
    "ga4": ({"ga_client_id": "1234567890.1700000000"}, {"account_id": "G-ABC123", "credentials": {"api_secret": "mp-secret"}},
            [(204, 0, b"")]),
    "meta": ({"fbclid": "IwAR2-visit"}, {"account_id": "555000111", "credentials": {"access_token": "EAAB"}},
             [(200, 0, b'{"events_received": 1, "fbtrace_id": "AxYz"}')]),
    "microsoft": ({"msclkid": "ms-click-1"}, {"account_id": "149000", "conversion_action": "Calls", "credentials": {
        "developer_token": "BBD", "customer_id": "251000", "client_id": "ms-app", "refresh_token": "M.R3"}},
        [(200, 0, b'{"access_token": "ms-tok"}'), (200, 0, b'{"PartialErrors": null}')]),
}


@pytest.mark.parametrize("kind", sorted(PLATFORMS))
def test_a_dni_visitor_with_the_platforms_click_id_calls_converts_and_the_platform_gets_the_documented_upload_once(
        kind, client, twilio, settings, django_capture_on_commit_callbacks):
    from datetime import UTC
    from urllib.parse import urlsplit

    from tracking.services.conversions import postback_url

    cache.clear()
    params, fields, script = PLATFORMS[kind]
    campaign = CampaignFactory(name=f"Quotes {kind}")
    handler = HandlerFactory(name="Desk")
    CampaignHandlerFactory(campaign=campaign, handler=handler)
    ConversionRuleFactory(campaign=campaign, kind="postback", revenue=Decimal("35"), payout=Decimal("10"))  # the CRM confirms
    pool = NumberPoolFactory(key=f"ads-{kind}", campaign=campaign)
    TrackingNumberFactory(number="+14152000031", kind="pool", pool=pool, campaign=campaign)
    ConversionDestination.objects.create(campaign=campaign, name=kind, kind=kind, **fields)
    body = {"pool": f"ads-{kind}", "visitor_id": "v-ads-platform1", "page_url": "https://quotes.example/", "params": params}
    number = client.post("/dni/v1/assign", data=json.dumps(body), content_type="text/plain", HTTP_ORIGIN="http://testserver").json()["number"]
    sid = "CA" + "c" * 32
    doc = etree.fromstring(twilio.post("/voice/incoming", {"CallSid": sid, "From": "+14155550123", "To": number}).content)
    twilio.post(doc.find("Dial").get("action"), {"CallSid": sid, "DialCallStatus": "completed", "DialCallDuration": "90"})
    with receiver(*script) as rx:
        base = f"http://127.0.0.1:{rx.port}"
        settings.CALLTRACK_AD_PLATFORM_URLS = {"google_token": f"{base}/g", "ga4": f"{base}/ga4", "meta": f"{base}/meta",
                                               "microsoft": f"{base}/ms", "microsoft_token": f"{base}/ms/token"}
        for _ in range(2):  # Twilio retries the status callback: nothing more
            with django_capture_on_commit_callbacks(execute=True):
                assert status_completed(twilio, sid).status_code == 200
            run_queued_tasks()
        call = Call.objects.get(call_sid=sid)
        url = urlsplit(postback_url(handler_id=handler.pk)).path
        for expected in (200, 409):  # the handler's CRM confirms the sale, then again: already converted, nothing more
            with django_capture_on_commit_callbacks(execute=True):
                assert client.post(url, {"call_id": call.pk}).status_code == expected
            run_queued_tasks()
    call.refresh_from_db()
    assert call.converted
    sent = rx.requests[-1]
    assert len(rx.requests) == len(script)
    if kind == "ga4":
        assert sent.path == "/ga4/mp/collect?measurement_id=G-ABC123&api_secret=mp-secret"
        assert json.loads(sent.body) == {
            "client_id": "1234567890.1700000000", "timestamp_micros": int(call.converted_at.timestamp() * 1_000_000),
            "events": [{"name": "phone_call_conversion", "params": {
                "value": 35.0, "currency": "USD", "transaction_id": f"call-{call.pk}", "call_id": call.pk, "talk_time": call.talk_time}}]}
    elif kind == "meta":
        assert sent.path == "/meta/v24.0/555000111/events?access_token=EAAB"
        assert json.loads(sent.body) == {"data": [{
            "event_name": "Lead", "event_time": int(call.converted_at.timestamp()), "event_id": f"call-{call.pk}",
            "action_source": "phone_call", "user_data": {"fbc": f"fb.1.{int(call.session.started_at.timestamp() * 1000)}.IwAR2-visit"},
            "custom_data": {"value": 35.0, "currency": "USD"}}]}
    else:
        assert sent.path == "/ms/CampaignManagement/v13/OfflineConversions/Apply"
        assert sent.headers["Authorization"] == "Bearer ms-tok"
        assert json.loads(sent.body) == {"OfflineConversions": [{
            "ConversionCurrencyCode": "USD", "ConversionName": "Calls",
            "ConversionTime": call.converted_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "ConversionValue": 35.0, "MicrosoftClickId": "ms-click-1"}]}
    assert call.conversion_uploads.get().status == UploadStatus.SENT
