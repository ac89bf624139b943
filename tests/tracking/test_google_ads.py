"""Google Ads through the official client library: the library's real service clients on a fake gRPC channel (no
network; the OAuth refresh grant goes to a real HTTP receiver on 127.0.0.1). Each test asserts the exact request
message Google receives, the metadata the library adds, and what the upload's status says."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import grpc
import pytest
from django.core.cache import cache
from django.utils import timezone

from tests.tracking.factories import CampaignFactory, SourceFactory
from tests.tracking.google_ads_fake import FakeRpcError, google_ads_error, install, partial_failure, types
from tests.tracking.receiver import receiver, run_queued_tasks
from tests.tracking.test_ad_uploads import GOOGLE_CREDS, TOKEN_OK, converted_call, google, point_at, queue_and_run
from tracking.models import ConversionUpload, UploadStatus
from tracking.services.ad_uploads import conversion_upload_attempt, conversion_uploads_due
from tracking.services.conversion_changes import call_conversion_restate, call_conversion_revoke
from tracking.services.conversions import ConversionRefused
from tracking.services.google_ads import GoogleAdsUnavailable, google_ads_conversion_actions

pytestmark = pytest.mark.django_db

UPLOAD = types("conversion_upload_service")
ADJUST = types("conversion_adjustment_upload_service")
SEARCH = types("google_ads_service")
CLICK_PATH = "/google.ads.googleads.v26.services.ConversionUploadService/UploadClickConversions"
CALL_PATH = "/google.ads.googleads.v26.services.ConversionUploadService/UploadCallConversions"
ADJUST_PATH = "/google.ads.googleads.v26.services.ConversionAdjustmentUploadService/UploadConversionAdjustments"
ACTION = "customers/1234567890/conversionActions/987"
PHONE_SHA256 = "36a2cef4ff9bf7a1abd2a93359136b870393be4106e6c5d19b72ff564f9deca4"  # sha256("+14155550123")


@pytest.fixture
def gads(monkeypatch):
    return install(monkeypatch)


def ny(at) -> str:
    text = at.astimezone(ZoneInfo("America/New_York")).strftime("%Y-%m-%d %H:%M:%S%z")
    return text[:-2] + ":" + text[-2:]


def click_ok():
    return UPLOAD.UploadClickConversionsResponse(results=[UPLOAD.ClickConversionResult(gclid="Cj0KCQ", conversion_action=ACTION)])


def test_a_gclid_call_is_uploaded_once_through_the_library_as_the_documented_click_conversion(gads, settings, django_capture_on_commit_callbacks):
    campaign = CampaignFactory()
    destination = google(campaign, credentials={**GOOGLE_CREDS, "login_customer_id": "111-222-3333"})
    call = converted_call(campaign, marketing={"gclid": "Cj0KCQ", "utm_source": "google"})
    gads.answer(click_ok())
    with receiver(TOKEN_OK) as rx:
        point_at(settings, rx)
        queue_and_run(django_capture_on_commit_callbacks, call)
        # The same event again, a postback repeated, the task run again: nothing more is sent.
        queue_and_run(django_capture_on_commit_callbacks, call)
        upload = ConversionUpload.objects.get(call=call, destination=destination)
        conversion_upload_attempt(upload_id=upload.pk)
    assert len(rx.requests) == 1 and rx.requests[0].path == "/google/token"
    (sent,) = gads.sent
    assert sent.method == CLICK_PATH
    assert (sent.metadata["developer-token"], sent.metadata["login-customer-id"]) == ("dev-tok", "1112223333")
    assert gads.credentials[0].token == "ya29.token"  # the access token calltrack fetched, handed to the library
    assert gads.closed == 1  # the client's channel is closed after its upload
    assert sent.request(UPLOAD.UploadClickConversionsRequest) == UPLOAD.UploadClickConversionsRequest(
        customer_id="1234567890", partial_failure=True, conversions=[UPLOAD.ClickConversion(
            gclid="Cj0KCQ", conversion_action=ACTION, conversion_date_time=ny(call.converted_at),
            conversion_value=125.5, currency_code="USD", order_id=f"call-{call.pk}")])
    upload.refresh_from_db()
    assert (upload.status, upload.reason, upload.platform_id, upload.attempts) == (UploadStatus.SENT, "accepted", f"call-{call.pk}", 1)
    assert '"gclid": "Cj0KCQ"' in upload.response and "1//refresh" not in str(upload.payload)


def test_gbraid_is_sent_when_there_is_no_gclid_with_the_consent_the_landing_page_reported(gads, settings, django_capture_on_commit_callbacks):
    campaign = CampaignFactory()
    google(campaign, consent_required=True)
    call = converted_call(campaign, marketing={"gbraid": "GB-1", "consent": "granted"})
    gads.answer(click_ok())
    with receiver(TOKEN_OK) as rx:
        point_at(settings, rx)
        queue_and_run(django_capture_on_commit_callbacks, call)
    conversion = gads.sent[0].request(UPLOAD.UploadClickConversionsRequest).conversions[0]
    assert (conversion.gbraid, conversion.gclid, conversion.consent.ad_user_data.name) == ("GB-1", "", "GRANTED")


def test_without_a_click_id_an_enhanced_conversion_for_leads_carries_the_hashed_e164_phone(gads, settings, django_capture_on_commit_callbacks):
    campaign = CampaignFactory()
    # No developer token: Google sunset them on 2026-09-09 (access belongs to the OAuth client's Cloud project).
    google(campaign, hashed_phone_allowed=True, credentials={k: v for k, v in GOOGLE_CREDS.items() if k != "developer_token"})
    call = converted_call(campaign, marketing={})
    gads.answer(click_ok())
    with receiver(TOKEN_OK) as rx:
        point_at(settings, rx)
        queue_and_run(django_capture_on_commit_callbacks, call)
    sent = gads.sent[0]
    conversion = sent.request(UPLOAD.UploadClickConversionsRequest).conversions[0]
    assert (conversion.gclid, conversion.order_id) == ("", f"call-{call.pk}")
    assert [(u.user_identifier_source.name, u.hashed_phone_number) for u in conversion.user_identifiers] == [("FIRST_PARTY", PHONE_SHA256)]
    assert b"4155550123" not in sent.body and "developer-token" not in sent.metadata
    assert call.conversion_uploads.get().status == UploadStatus.SENT


def test_a_call_from_a_google_call_asset_is_uploaded_as_a_call_conversion_and_cannot_be_adjusted(gads, settings, django_capture_on_commit_callbacks):
    campaign = CampaignFactory()
    google(campaign)
    call = converted_call(campaign, marketing={}, source=SourceFactory(google_call_asset=True))
    gads.answer(UPLOAD.UploadCallConversionsResponse(results=[UPLOAD.CallConversionResult(caller_id="+14155550123")]))
    with receiver(TOKEN_OK) as rx:
        point_at(settings, rx)
        queue_and_run(django_capture_on_commit_callbacks, call)
        with django_capture_on_commit_callbacks(execute=True):
            call_conversion_revoke(call=call, source="admin")
        run_queued_tasks()
    assert [s.method for s in gads.sent] == [CALL_PATH]
    assert gads.sent[0].request(UPLOAD.UploadCallConversionsRequest) == UPLOAD.UploadCallConversionsRequest(
        customer_id="1234567890", partial_failure=True, conversions=[UPLOAD.CallConversion(
            caller_id="+14155550123", call_start_date_time=ny(call.started_at), conversion_action=ACTION,
            conversion_date_time=ny(call.converted_at), conversion_value=125.5, currency_code="USD")])
    upload = call.conversion_uploads.get()
    assert upload.status == UploadStatus.SENT
    assert upload.reason == ("retraction not sent: a Google Ads call conversion has no order id, so the API cannot name it "
                             "(adjust it in Google Ads)")


def test_revoking_retracts_and_restating_restates_by_order_id(gads, settings, django_capture_on_commit_callbacks):
    campaign = CampaignFactory()
    google(campaign)
    call = converted_call(campaign, marketing={"gclid": "Cj0KCQ"})
    adjusted = ADJUST.UploadConversionAdjustmentsResponse(results=[ADJUST.ConversionAdjustmentResult(order_id=f"call-{call.pk}")])
    gads.answer(click_ok(), adjusted, adjusted)
    with receiver(TOKEN_OK) as rx:
        point_at(settings, rx)
        queue_and_run(django_capture_on_commit_callbacks, call)
        with django_capture_on_commit_callbacks(execute=True):
            call_conversion_restate(call=call, source="admin", revenue=Decimal("80"))
        run_queued_tasks()
        with django_capture_on_commit_callbacks(execute=True):
            call_conversion_revoke(call=call, source="api", reason="the sale was cancelled")
        run_queued_tasks()
        with pytest.raises(ConversionRefused):
            call_conversion_revoke(call=call, source="api")
    assert [s.method for s in gads.sent] == [CLICK_PATH, ADJUST_PATH, ADJUST_PATH]
    restate = gads.sent[1].request(ADJUST.UploadConversionAdjustmentsRequest)
    retract = gads.sent[2].request(ADJUST.UploadConversionAdjustmentsRequest)
    assert (restate.customer_id, restate.partial_failure) == ("1234567890", True)
    item = restate.conversion_adjustments[0]
    assert (item.adjustment_type.name, item.order_id, item.conversion_action) == ("RESTATEMENT", f"call-{call.pk}", ACTION)
    assert (item.restatement_value.adjusted_value, item.restatement_value.currency_code) == (80.0, "USD")
    assert item.adjustment_date_time[:10] == ny(timezone.now())[:10] and item.adjustment_date_time[-6:] in ("-05:00", "-04:00")
    gone = retract.conversion_adjustments[0]
    assert (gone.adjustment_type.name, gone.order_id, "restatement_value" in gone) == ("RETRACTION", f"call-{call.pk}", False)
    upload = call.conversion_uploads.get()
    assert (upload.status, upload.adjustment, upload.reason) == (UploadStatus.SENT, "retraction", "retraction sent: accepted")


def test_a_wbraid_conversion_is_sent_but_google_takes_no_adjustment_of_it(gads, settings, django_capture_on_commit_callbacks):
    campaign = CampaignFactory()
    google(campaign)
    call = converted_call(campaign, marketing={"wbraid": "WB-1"})
    gads.answer(click_ok())
    with receiver(TOKEN_OK) as rx:
        point_at(settings, rx)
        queue_and_run(django_capture_on_commit_callbacks, call)
        with django_capture_on_commit_callbacks(execute=True):
            call_conversion_restate(call=call, source="admin", revenue=Decimal("10"))
        run_queued_tasks()
    assert len(gads.sent) == 1
    upload = call.conversion_uploads.get()
    assert (upload.status, upload.reason) == (UploadStatus.SENT, "restatement not sent: Google Ads takes no adjustments of wbraid conversions")


def test_a_partial_failure_refuses_in_googles_words_and_a_too_recent_call_waits_twelve_hours(gads, settings, django_capture_on_commit_callbacks):
    campaign = CampaignFactory()
    google(campaign)
    refused_call = converted_call(campaign, marketing={"gclid": "old"})
    recent_call = converted_call(campaign, marketing={}, source=SourceFactory(google_call_asset=True))
    gads.answer(
        UPLOAD.UploadClickConversionsResponse(partial_failure_error=partial_failure(
            "conversion_upload_error", "EXPIRED_EVENT", "The click associated with the given identifier or iOS URL parameter occurred too long ago.")),
        UPLOAD.UploadCallConversionsResponse(partial_failure_error=partial_failure(
            "conversion_upload_error", "TOO_RECENT_CALL", "The call occurred too recently.")),
    )
    with receiver(TOKEN_OK) as rx:
        point_at(settings, rx)
        queue_and_run(django_capture_on_commit_callbacks, refused_call)
        queue_and_run(django_capture_on_commit_callbacks, recent_call)
    refused = refused_call.conversion_uploads.get()
    assert (refused.status, refused.reason) == (UploadStatus.REFUSED, "Google Ads: The click associated with the given identifier "
                                                "or iOS URL parameter occurred too long ago. (EXPIRED_EVENT)")
    recent = recent_call.conversion_uploads.get()
    assert recent.status == UploadStatus.PENDING and "The call occurred too recently. (TOO_RECENT_CALL)" in recent.reason
    assert timedelta(hours=11, minutes=59) < recent.next_try_at - timezone.now() <= timedelta(hours=12)


def test_google_unavailable_is_tried_again_and_an_error_of_the_account_refuses_in_its_words(gads, settings, django_capture_on_commit_callbacks):
    campaign = CampaignFactory()
    google(campaign)
    call = converted_call(campaign, marketing={"gclid": "G"})
    gads.answer(FakeRpcError(grpc.StatusCode.UNAVAILABLE, "connection reset"),
                google_ads_error(grpc.StatusCode.PERMISSION_DENIED, "authorization_error", "DEVELOPER_TOKEN_NOT_APPROVED",
                                 "The developer token is only approved for use with test accounts."))
    with receiver(TOKEN_OK) as rx:
        point_at(settings, rx)
        queue_and_run(django_capture_on_commit_callbacks, call)
        upload = call.conversion_uploads.get()
        assert (upload.status, upload.attempts) == (UploadStatus.PENDING, 1)
        assert "Google Ads UNAVAILABLE: connection reset" in upload.reason
        conversion_uploads_due(now=upload.next_try_at + timedelta(seconds=1))
    upload.refresh_from_db()
    assert (upload.status, upload.reason) == (UploadStatus.REFUSED, "Google Ads: The developer token is only approved for use with "
                                              "test accounts. (DEVELOPER_TOKEN_NOT_APPROVED)")
    assert upload.response.startswith("request id req-42")
    assert len(gads.sent) == 2 and gads.closed == 2  # closed after a failure too


def test_the_conversion_action_picker_lists_the_accounts_actions_once_then_from_the_cache(gads, settings):
    cache.clear()
    action = types("google_ads_service").GoogleAdsRow
    from google.ads.googleads.v26.enums.types.conversion_action_type import ConversionActionTypeEnum
    from google.ads.googleads.v26.resources.types.conversion_action import ConversionAction

    rows = [action(conversion_action=ConversionAction(id=987, name="Calls from ads", type_=ConversionActionTypeEnum.ConversionActionType.UPLOAD_CALLS)),
            action(conversion_action=ConversionAction(id=988, name="Offline leads", type_=ConversionActionTypeEnum.ConversionActionType.UPLOAD_CLICKS))]
    gads.answer(SEARCH.SearchGoogleAdsResponse(results=rows))
    with receiver(TOKEN_OK) as rx:
        point_at(settings, rx)
        first = google_ads_conversion_actions(account_id="123-456-7890", credentials=GOOGLE_CREDS)
        again = google_ads_conversion_actions(account_id="123-456-7890", credentials=GOOGLE_CREDS)
    assert first == again and [(c.id, c.label) for c in first] == [
        ("987", "Calls from ads (upload calls, id 987)"), ("988", "Offline leads (upload clicks, id 988)")]
    assert len(gads.sent) == 1 and len(rx.requests) == 1 and gads.closed == 1
    search = gads.sent[0].request(SEARCH.SearchGoogleAdsRequest)
    assert search.customer_id == "1234567890" and "FROM conversion_action WHERE conversion_action.status = 'ENABLED'" in search.query


def test_the_picker_says_clearly_when_the_credentials_fail(gads, settings):
    cache.clear()
    with pytest.raises(GoogleAdsUnavailable, match="missing credentials: refresh_token"):
        google_ads_conversion_actions(account_id="1234567890", credentials={k: v for k, v in GOOGLE_CREDS.items() if k != "refresh_token"})
    with receiver((400, 0, b'{"error": "invalid_grant", "error_description": "Token has been expired or revoked."}')) as rx:
        point_at(settings, rx)
        with pytest.raises(GoogleAdsUnavailable, match=r"sign-in refused \(HTTP 400\): Token has been expired or revoked."):
            google_ads_conversion_actions(account_id="1234567890", credentials=GOOGLE_CREDS)
    gads.answer(FakeRpcError(grpc.StatusCode.UNAUTHENTICATED, "Request had invalid authentication credentials."))
    with receiver(TOKEN_OK) as rx:
        point_at(settings, rx)
        with pytest.raises(GoogleAdsUnavailable, match="Google Ads UNAUTHENTICATED: Request had invalid authentication credentials."):
            google_ads_conversion_actions(account_id="1234567890", credentials=GOOGLE_CREDS)
    assert gads.answers == []


def test_the_handlers_signed_postback_revokes_once_and_google_gets_the_retraction(gads, settings, client, django_capture_on_commit_callbacks):
    from urllib.parse import urlsplit

    from tracking.services.conversions import postback_url

    campaign = CampaignFactory()
    google(campaign)
    call = converted_call(campaign, marketing={"gclid": "Cj0KCQ"})
    adjusted = ADJUST.UploadConversionAdjustmentsResponse(results=[ADJUST.ConversionAdjustmentResult(order_id=f"call-{call.pk}")])
    gads.answer(click_ok(), adjusted)
    url = urlsplit(postback_url(handler_id=call.handler_id)).path
    with receiver(TOKEN_OK) as rx:
        point_at(settings, rx)
        queue_and_run(django_capture_on_commit_callbacks, call)
        assert client.post(url, {"call_id": call.pk, "action": "cancel"}).status_code == 400
        with django_capture_on_commit_callbacks(execute=True):
            answer = client.post(url, {"call_id": call.pk, "action": "revoke", "reason": "returned\x00"})
        run_queued_tasks()
        with django_capture_on_commit_callbacks(execute=True):
            again = client.post(url, {"call_id": call.pk, "action": "revoke"})
        run_queued_tasks()
    assert answer.status_code == 200 and answer.json() == {"converted": False, "revoked": True, "call_id": call.pk}
    assert again.status_code == 422 and "no conversion to revoke" in again.json()["detail"]
    assert [s.method for s in gads.sent] == [CLICK_PATH, ADJUST_PATH]
    assert gads.sent[1].request(ADJUST.UploadConversionAdjustmentsRequest).conversion_adjustments[0].adjustment_type.name == "RETRACTION"
    call.refresh_from_db()
    assert (call.converted, call.conversion_reason) == (False, "revoked (postback): returned")


def test_the_destinations_admin_form_offers_the_accounts_conversion_actions_or_says_why_not(gads, settings, admin_client):
    from django.urls import reverse
    from google.ads.googleads.v26.enums.types.conversion_action_type import ConversionActionTypeEnum
    from google.ads.googleads.v26.resources.types.conversion_action import ConversionAction

    cache.clear()
    destination = google(CampaignFactory(), conversion_action="555")
    row = SEARCH.GoogleAdsRow(conversion_action=ConversionAction(id=987, name="Calls from ads", type_=ConversionActionTypeEnum.ConversionActionType.UPLOAD_CALLS))
    gads.answer(SEARCH.SearchGoogleAdsResponse(results=[row]))
    url = reverse("admin:tracking_conversiondestination_change", args=[destination.pk])
    with receiver(TOKEN_OK) as rx:
        point_at(settings, rx)
        page = admin_client.get(url).content.decode()
    assert '<select name="conversion_action"' in page
    assert '<option value="987">Calls from ads (upload calls, id 987)</option>' in page
    assert '<option value="555" selected>555 (not among the account&#x27;s enabled conversion actions)</option>' in page
    cache.clear()
    with receiver((401, 0, b'{"error": "invalid_client", "error_description": "The OAuth client was not found."}')) as rx:
        point_at(settings, rx)
        page = admin_client.get(url).content.decode()
    assert '<select name="conversion_action"' not in page
    assert "Could not list the account&#x27;s conversion actions: sign-in refused (HTTP 401): The OAuth client was not found." in page


def test_an_account_google_no_longer_lets_upload_click_conversions_is_refused_with_what_to_do(gads, settings, django_capture_on_commit_callbacks):
    campaign = CampaignFactory()
    google(campaign)
    call = converted_call(campaign, marketing={"gclid": "G"})
    gads.answer(google_ads_error(grpc.StatusCode.PERMISSION_DENIED, "not_allowlisted_error", "CUSTOMER_NOT_ALLOWLISTED_FOR_THIS_FEATURE",
                                 "Customer is not allowlisted for accessing this feature."))
    with receiver(TOKEN_OK) as rx:
        point_at(settings, rx)
        queue_and_run(django_capture_on_commit_callbacks, call)
    upload = call.conversion_uploads.get()
    assert (upload.status, upload.reason) == (UploadStatus.REFUSED, (
        "Google Ads: Customer is not allowlisted for accessing this feature. (CUSTOMER_NOT_ALLOWLISTED_FOR_THIS_FEATURE): this account "
        "may no longer upload offline click conversions through the Google Ads API; Google's Data Manager API replaces it"))
