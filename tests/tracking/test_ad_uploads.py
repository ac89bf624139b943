"""Converting calls sent back to the ad platforms: queued after the conversion, delivered by django-q2 tasks to a real
HTTP receiver on 127.0.0.1 (the platforms' addresses point at it), once per call and destination, retried, adjusted.
Google Ads goes through its client library over gRPC: tests/tracking/test_google_ads.py."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from urllib.parse import parse_qs

import pytest
from django.utils import timezone
from django_q.models import OrmQ

from tests.numbers.factories import NumberSessionFactory
from tests.tracking.factories import CallFactory, CampaignFactory, ConversionRuleFactory, HandlerFactory, SourceFactory
from tests.tracking.receiver import receiver, run_queued_tasks
from tracking.models import CallStatus, ConversionDestination, UploadStatus
from tracking.services.ad_uploads import conversion_uploads_due, conversion_uploads_queue
from tracking.services.conversion_changes import call_conversion_revoke
from tracking.services.conversions import ConversionRefused, call_convert

pytestmark = pytest.mark.django_db

TOKEN_OK = (200, 0, b'{"access_token": "ya29.token", "expires_in": 3599, "token_type": "Bearer"}')
GOOGLE_CREDS = {"developer_token": "dev-tok", "client_id": "cid.apps", "client_secret": "csecret", "refresh_token": "1//refresh"}


@pytest.fixture(autouse=True)
def _fast(settings):
    settings.CALLTRACK_WEBHOOK_TIMEOUT = 0.5
    settings.CALLTRACK_AD_UPLOAD_MAX_ATTEMPTS = 3
    settings.CALLTRACK_AD_UPLOAD_RETRY_BASE = 60


def point_at(settings, rx) -> None:
    base = f"http://127.0.0.1:{rx.port}"
    settings.CALLTRACK_AD_PLATFORM_URLS = {
        "google_token": f"{base}/google/token", "ga4": f"{base}/ga4", "meta": f"{base}/meta",
        "microsoft": f"{base}/ms", "microsoft_token": f"{base}/ms/token",
    }


def converted_call(campaign, *, marketing, converted_at=None, **kw):
    """A call of ``campaign`` from a DNI visitor (``marketing``: the visit's click ids), converted on the revenue side."""
    converted_at = converted_at or timezone.now() - timedelta(minutes=1)
    session = NumberSessionFactory(started_at=converted_at - timedelta(minutes=20), marketing_data=marketing)
    fields = dict(
        campaign=campaign, handler=HandlerFactory(), source=SourceFactory(), session=session, marketing_data=marketing,
        caller_number="+14155550123", status=CallStatus.COMPLETED, started_at=converted_at - timedelta(minutes=5),
        answered_at=converted_at - timedelta(minutes=5), ended_at=converted_at, talk_time=240, duration=250,
        converted=True, revenue_converted=True, revenue=Decimal("125.50"), payout=Decimal("40"), converted_at=converted_at,
        conversion_status="converted", conversion_evaluated_at=converted_at,
    )
    fields.update(kw)
    return CallFactory(**fields)


def google(campaign, **kw):
    fields = dict(campaign=campaign, name="Google", kind="google_ads", account_id="123-456-7890", conversion_action="987",
                  account_timezone="America/New_York", credentials=GOOGLE_CREDS)
    fields.update(kw)
    return ConversionDestination.objects.create(**fields)


def queue_and_run(django_capture_on_commit_callbacks, call):
    with django_capture_on_commit_callbacks(execute=True):
        created = conversion_uploads_queue(call_id=call.pk)
    run_queued_tasks()
    return created


def google_time(at: datetime) -> str:
    from zoneinfo import ZoneInfo

    text = at.astimezone(ZoneInfo("America/New_York")).strftime("%Y-%m-%d %H:%M:%S%z")
    return text[:-2] + ":" + text[-2:]


def test_a_call_without_a_click_id_is_not_eligible_with_its_reason_and_nothing_is_sent(settings, django_capture_on_commit_callbacks):
    campaign = CampaignFactory()
    google(campaign)
    call = converted_call(campaign, marketing={"utm_source": "bing"})
    with receiver((200, 0)) as rx:
        point_at(settings, rx)
        queue_and_run(django_capture_on_commit_callbacks, call)
    assert rx.requests == []
    upload = call.conversion_uploads.get()
    assert upload.status == UploadStatus.NOT_ELIGIBLE
    assert upload.reason.startswith("no Google click id (gclid, gbraid, wbraid) on the visit")
    assert not OrmQ.objects.exists()


def test_ga4_meta_and_microsoft_each_receive_their_documented_request(settings, django_capture_on_commit_callbacks):
    campaign = CampaignFactory()
    ConversionDestination.objects.create(campaign=campaign, name="GA4", kind="ga4", account_id="G-ABC123", credentials={"api_secret": "mp-secret"})
    ConversionDestination.objects.create(campaign=campaign, name="Meta", kind="meta", account_id="555000111", hashed_phone_allowed=True,
                                         credentials={"access_token": "EAAB"})
    ConversionDestination.objects.create(campaign=campaign, name="Bing", kind="microsoft", account_id="149000", conversion_action="Calls",
                                         credentials={"developer_token": "BBD", "customer_id": "251000", "client_id": "ms-app", "refresh_token": "M.R3"})
    call = converted_call(campaign, marketing={"ga_client_id": "1234567890.1700000000", "fbclid": "IwAR2", "msclkid": "ms-click-1"})
    with receiver((204, 0, b""), (200, 0, b'{"events_received": 1, "messages": [], "fbtrace_id": "AxYz"}'), TOKEN_OK,
                  (200, 0, b'{"PartialErrors": null}')) as rx:
        point_at(settings, rx)
        queue_and_run(django_capture_on_commit_callbacks, call)
    ga4, meta, ms_token, ms = rx.requests
    assert ga4.path == "/ga4/mp/collect?measurement_id=G-ABC123&api_secret=mp-secret"
    assert json.loads(ga4.body) == {
        "client_id": "1234567890.1700000000", "timestamp_micros": int(call.converted_at.timestamp() * 1_000_000),
        "events": [{"name": "phone_call_conversion", "params": {
            "value": 125.5, "currency": "USD", "transaction_id": f"call-{call.pk}", "call_id": call.pk, "talk_time": 240}}],
    }
    assert meta.path == "/meta/v24.0/555000111/events?access_token=EAAB"
    click_ms = int(call.session.started_at.timestamp() * 1000)
    assert json.loads(meta.body) == {"data": [{
        "event_name": "Lead", "event_time": int(call.converted_at.timestamp()), "event_id": f"call-{call.pk}", "action_source": "phone_call",
        "user_data": {"fbc": f"fb.1.{click_ms}.IwAR2", "ph": ["413ba75461ab5f99d36820e561ea97e2bd80f9cb586f7ecea6cf4c496518950a"]},
        "custom_data": {"value": 125.5, "currency": "USD"},
    }]}
    assert parse_qs(ms_token.body.decode())["scope"] == ["https://ads.microsoft.com/msads.manage offline_access"]
    assert ms.path == "/ms/CampaignManagement/v13/OfflineConversions/Apply"
    assert (ms.headers["DeveloperToken"], ms.headers["CustomerId"], ms.headers["CustomerAccountId"]) == ("BBD", "251000", "149000")
    assert json.loads(ms.body) == {"OfflineConversions": [{
        "ConversionCurrencyCode": "USD", "ConversionName": "Calls",
        "ConversionTime": call.converted_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "ConversionValue": 125.5, "MicrosoftClickId": "ms-click-1",
    }]}
    statuses = dict(call.conversion_uploads.values_list("destination__kind", "status"))
    assert statuses == {"ga4": "sent", "meta": "sent", "microsoft": "sent"}
    assert call.conversion_uploads.get(destination__kind="meta").platform_id == "AxYz"


def test_a_busy_platform_is_tried_again_with_backoff_and_a_refusal_is_kept_in_its_words(settings, django_capture_on_commit_callbacks):
    campaign = CampaignFactory()
    ConversionDestination.objects.create(campaign=campaign, name="Meta", kind="meta", account_id="555", credentials={"access_token": "T"})
    call = converted_call(campaign, marketing={"fbclid": "F"})
    with receiver((503, 0), (400, 0, b'{"error": {"message": "Invalid parameter: event_time too far in the past", "code": 100}}')) as rx:
        point_at(settings, rx)
        queue_and_run(django_capture_on_commit_callbacks, call)
        upload = call.conversion_uploads.get()
        assert (upload.status, upload.attempts) == (UploadStatus.PENDING, 1)
        assert upload.reason.startswith("try 1 failed, trying again at") and "HTTP 503" in upload.reason
        assert upload.next_try_at > timezone.now() + timedelta(seconds=55)
        assert conversion_uploads_due() == 0  # not due yet
        assert conversion_uploads_due(now=upload.next_try_at + timedelta(seconds=1)) == 1
    upload.refresh_from_db()
    assert (upload.status, upload.attempts) == (UploadStatus.REFUSED, 2)
    assert upload.reason == "HTTP 400: Invalid parameter: event_time too far in the past"
    assert len(rx.requests) == 2


def test_a_platform_failing_every_try_is_given_up_after_the_last_one(settings, django_capture_on_commit_callbacks):
    campaign = CampaignFactory()
    ConversionDestination.objects.create(campaign=campaign, name="GA4", kind="ga4", account_id="G-1", credentials={"api_secret": "s"})
    call = converted_call(campaign, marketing={"ga_client_id": "1.2"})
    with receiver((500, 0)) as rx:
        point_at(settings, rx)
        queue_and_run(django_capture_on_commit_callbacks, call)
        upload = call.conversion_uploads.get()
        for hours in (7, 14, 21):  # each later than the backoff before it
            conversion_uploads_due(now=timezone.now() + timedelta(hours=hours))
    upload.refresh_from_db()
    assert (upload.status, upload.attempts, len(rx.requests)) == (UploadStatus.REFUSED, 3, 3)
    assert upload.reason == "gave up after 3 tries: HTTP 500: the platform is busy or failing"


def test_a_delay_holds_the_upload_until_the_sweep_finds_it_due(django_capture_on_commit_callbacks):
    campaign = CampaignFactory()
    ConversionDestination.objects.create(campaign=campaign, name="Local", delay_minutes=180)
    call = converted_call(campaign, marketing={"gclid": "G"})
    queue_and_run(django_capture_on_commit_callbacks, call)
    upload = call.conversion_uploads.get()
    assert (upload.status, upload.reason) == (UploadStatus.PENDING, "waiting for the delay")
    assert conversion_uploads_due() == 0
    assert conversion_uploads_due(now=call.converted_at + timedelta(minutes=181)) == 1
    upload.refresh_from_db()
    assert (upload.status, upload.reason) == (UploadStatus.SENT, "recorded locally, nothing sent")
    assert upload.payload == {
        "call_id": call.pk, "event_id": f"call-{call.pk}", "conversion_time": call.converted_at.isoformat(), "value": "125.50",
        "currency": "USD", "click_ids": {"gclid": "G"},
    }


def test_a_postback_conversion_reaches_the_local_destination_once_even_repeated(call, django_capture_on_commit_callbacks):
    """The conftest's call converts by postback; the local destination records it; a repeated postback adds nothing."""
    ConversionDestination.objects.create(campaign=call.campaign, name="Local", trigger="payout")
    with django_capture_on_commit_callbacks(execute=True):
        call_convert(call=call, source="postback")
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(ConversionRefused):
        call_convert(call=call, source="postback")
    run_queued_tasks()
    upload = call.conversion_uploads.get()
    assert (upload.status, upload.value, upload.payload["value"]) == (UploadStatus.SENT, Decimal("20.00"), "20.00")


def test_a_source_specific_destination_sends_only_its_sources_calls(django_capture_on_commit_callbacks):
    campaign = CampaignFactory()
    ConversionDestination.objects.create(campaign=campaign, name="Only Facebook", source=SourceFactory())
    call = converted_call(campaign, marketing={})
    queue_and_run(django_capture_on_commit_callbacks, call)
    assert not call.conversion_uploads.exists()


def test_a_revoked_conversion_not_sent_yet_is_never_sent_and_meta_keeps_what_it_got(settings, django_capture_on_commit_callbacks):
    campaign = CampaignFactory()
    ConversionDestination.objects.create(campaign=campaign, name="Later", delay_minutes=60)
    ConversionDestination.objects.create(campaign=campaign, name="Meta", kind="meta", account_id="5", credentials={"access_token": "T"})
    call = converted_call(campaign, marketing={"fbclid": "F"})
    with receiver((200, 0, b'{"events_received": 1, "fbtrace_id": "t"}')) as rx:
        point_at(settings, rx)
        queue_and_run(django_capture_on_commit_callbacks, call)
        with django_capture_on_commit_callbacks(execute=True):
            call_conversion_revoke(call=call, source="admin")
        run_queued_tasks()
    assert len(rx.requests) == 1
    later = call.conversion_uploads.get(destination__name="Later")
    meta = call.conversion_uploads.get(destination__name="Meta")
    assert (later.status, later.reason) == (UploadStatus.NOT_ELIGIBLE, "the conversion was revoked before it was sent")
    assert (meta.status, meta.reason) == (UploadStatus.SENT, "retraction not sent: Meta (Facebook, Instagram) takes no adjustments")


def test_a_qualified_call_is_sent_when_it_ends_answered_and_long_enough(django_capture_on_commit_callbacks):
    campaign = CampaignFactory()
    ConversionDestination.objects.create(campaign=campaign, name="Qualified", trigger="qualified", min_talk_time=120,
                                         value_from="fixed", fixed_value=Decimal("15"))
    long_call = converted_call(campaign, marketing={}, converted=False, revenue_converted=False, converted_at=None, talk_time=130)
    short_call = converted_call(campaign, marketing={}, converted=False, revenue_converted=False, converted_at=None, talk_time=60)
    for c in (long_call, short_call):
        queue_and_run(django_capture_on_commit_callbacks, c)
    assert long_call.conversion_uploads.get().value == Decimal("15.00")
    assert not short_call.conversion_uploads.exists()


@pytest.mark.parametrize("kind", ["google_ads", "microsoft"])
def test_a_stored_refresh_token_refused_says_so(settings, django_capture_on_commit_callbacks, kind):
    campaign = CampaignFactory()
    creds = GOOGLE_CREDS if kind == "google_ads" else {"developer_token": "d", "customer_id": "c", "client_id": "i", "refresh_token": "r"}
    ConversionDestination.objects.create(campaign=campaign, name="X", kind=kind, account_id="1234567890", conversion_action="9", credentials=creds)
    call = converted_call(campaign, marketing={"gclid": "G", "msclkid": "M"})
    with receiver((400, 0, b'{"error": "invalid_grant", "error_description": "Token has been expired or revoked."}')) as rx:
        point_at(settings, rx)
        queue_and_run(django_capture_on_commit_callbacks, call)
    upload = call.conversion_uploads.get()
    assert (upload.status, upload.reason) == (UploadStatus.REFUSED, "sign-in refused (HTTP 400): Token has been expired or revoked.")
    assert len(rx.requests) == 1


def test_platform_addresses_that_are_not_public_are_refused_by_the_outbound_rules(settings, django_capture_on_commit_callbacks):
    settings.CALLTRACK_OUTBOUND_ALLOW = []
    campaign = CampaignFactory()
    ConversionDestination.objects.create(campaign=campaign, name="GA4", kind="ga4", account_id="G-1", credentials={"api_secret": "s"})
    call = converted_call(campaign, marketing={"ga_client_id": "1.2"})
    with receiver((204, 0)) as rx:
        point_at(settings, rx)
        queue_and_run(django_capture_on_commit_callbacks, call)
    upload = call.conversion_uploads.get()
    assert upload.status == UploadStatus.REFUSED and upload.reason.startswith("refused by calltrack's outbound rules")
    assert rx.requests == []


def test_the_rules_conversion_of_a_status_callback_queues_the_upload(django_capture_on_commit_callbacks):
    """The conversion path outside the voice turn (call_conversion_evaluate) announces call.converted: queued after commit."""
    from tracking.services.conversions import call_conversion_evaluate

    campaign = CampaignFactory()
    ConversionRuleFactory(campaign=campaign, min_duration=30, revenue=Decimal("12"))
    ConversionDestination.objects.create(campaign=campaign, name="Local")
    call = converted_call(campaign, marketing={"gclid": "G"}, converted=False, revenue_converted=False, converted_at=None,
                          conversion_evaluated_at=None, revenue=Decimal("0"))
    with django_capture_on_commit_callbacks(execute=True):
        call_conversion_evaluate(call=call)
    run_queued_tasks()
    upload = call.conversion_uploads.get()
    assert (upload.status, upload.payload["value"], upload.payload["click_ids"]) == (UploadStatus.SENT, "12.00", {"gclid": "G"})


def test_the_worker_tasks_and_the_every_minute_sweep_are_scheduled():
    """An upload whose queued task never ran (a worker lost it): the every-minute sweep sends it."""
    from calltrack.schedules import SCHEDULES
    from tracking.tasks import conversion_upload_deliver, conversion_uploads_due_task

    assert ("calltrack: conversion uploads due", "tracking.tasks.conversion_uploads_due_task", "I", 1) in SCHEDULES
    campaign = CampaignFactory()
    ConversionDestination.objects.create(campaign=campaign, name="Local")
    call = converted_call(campaign, marketing={})
    upload = conversion_uploads_queue(call_id=call.pk)[0]  # its after-commit queueing never runs here: the task is "lost"
    assert not OrmQ.objects.exists() and upload.status == UploadStatus.PENDING
    assert conversion_uploads_due_task() == 1
    assert conversion_upload_deliver(upload.pk) == f"upload {upload.pk}: sent after 1 tries"  # the late task: nothing more
    assert conversion_upload_deliver(10**9) == f"upload {10**9}: gone or being sent by another worker"
