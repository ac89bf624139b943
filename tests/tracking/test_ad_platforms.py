"""What each ad platform is sent for a converting call, field by field (pure builders: no database, no network)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from tracking.services import ad_platforms as p

URLS = {"ga4": "https://ga.test", "meta": "https://graph.test", "microsoft": "https://ms.test"}
CONVERTED = datetime(2026, 3, 10, 18, 30, 5, tzinfo=UTC)
CLICK = datetime(2026, 3, 10, 18, 0, 0, 123000, tzinfo=UTC)
NOW = CONVERTED + timedelta(minutes=5)
PHONE_GOOGLE = "36a2cef4ff9bf7a1abd2a93359136b870393be4106e6c5d19b72ff564f9deca4"  # sha256("+14155550123")
PHONE_META = "413ba75461ab5f99d36820e561ea97e2bd80f9cb586f7ecea6cf4c496518950a"  # sha256("14155550123")


def call(**kw) -> p.UploadCall:
    fields = dict(
        id=42, caller_number="+14155550123", started_at=CONVERTED - timedelta(minutes=3), conversion_at=CONVERTED, click_at=CLICK,
        marketing={}, answered=True, talk_time=150, revenue_converted=True, revenue=Decimal("125.5"), payout=Decimal("40"),
    )
    fields.update(kw)
    return p.UploadCall(**fields)


def dest(kind: str, **kw) -> p.Destination:
    return p.Destination(id=1, kind=kind, **kw)


GOOGLE = dict(account_id="123-456-7890", conversion_action="987", account_timezone="America/New_York",
              credentials={"developer_token": "dev-tok", "login_customer_id": "111-222-3333"})


def test_google_ads_uploads_a_click_conversion_by_gclid_in_the_account_time_zone_with_the_call_as_order_id():
    plan = p.upload_build(dest("google_ads", **GOOGLE), call(marketing={"gclid": "Cj0KCQ", "fbclid": "x"}), now=NOW, base_urls=URLS)
    assert plan == p.Plan(
        url="",
        body={"customerId": "1234567890", "conversions": [{
            "conversionAction": "customers/1234567890/conversionActions/987",
            "conversionDateTime": "2026-03-10 14:30:05-04:00",
            "conversionValue": 125.5, "currencyCode": "USD", "orderId": "call-42", "gclid": "Cj0KCQ",
        }], "partialFailure": True},
        token="google", rpc="UploadClickConversions", platform_id="call-42",
    )


def test_google_ads_states_the_consent_the_landing_page_reported_and_nothing_when_it_said_nothing():
    granted = p.upload_build(dest("google_ads", **GOOGLE), call(marketing={"gclid": "G", "consent": "yes"}), now=NOW, base_urls=URLS)
    denied = p.upload_build(dest("google_ads", **GOOGLE), call(marketing={"gclid": "G", "consent": "denied"}), now=NOW, base_urls=URLS)
    silent = p.upload_build(dest("google_ads", **GOOGLE), call(marketing={"gclid": "G"}), now=NOW, base_urls=URLS)
    assert granted.body["conversions"][0]["consent"] == {"adUserData": "GRANTED"}
    assert denied.body["conversions"][0]["consent"] == {"adUserData": "DENIED"}
    assert "consent" not in silent.body["conversions"][0]


def test_a_google_call_asset_call_without_a_click_id_is_a_call_conversion_with_caller_id_and_call_start():
    plan = p.upload_build(dest("google_ads", **GOOGLE), call(google_call=True), now=NOW, base_urls=URLS)
    assert plan == p.Plan(
        url="",
        body={"customerId": "1234567890", "conversions": [{
            "callerId": "+14155550123", "callStartDateTime": "2026-03-10 14:27:05-04:00",
            "conversionAction": "customers/1234567890/conversionActions/987", "conversionDateTime": "2026-03-10 14:30:05-04:00",
            "conversionValue": 125.5, "currencyCode": "USD",
        }], "partialFailure": True},
        token="google", rpc="UploadCallConversions", platform_id="call-42",
    )
    # A click id wins: the visit is known, so the click conversion is the better match.
    assert p.upload_build(dest("google_ads", **GOOGLE), call(google_call=True, marketing={"gclid": "G"}), now=NOW, base_urls=URLS).rpc == "UploadClickConversions"
    assert p.upload_build(dest("google_ads", **GOOGLE), call(google_call=True, caller_number="anonymous"), now=NOW, base_urls=URLS) == p.Ineligible(
        "a Google call asset call without the caller's number in E.164: Google Ads cannot match it")
    assert p.upload_build(dest("google_ads", **GOOGLE), call(google_call=True), now=NOW, base_urls=URLS, adjustment="retraction") == p.Ineligible(
        "retraction not sent: a Google Ads call conversion has no order id, so the API cannot name it (adjust it in Google Ads)")
    old = call(google_call=True, started_at=CONVERTED - timedelta(days=95))
    assert p.upload_build(dest("google_ads", **GOOGLE), old, now=NOW, base_urls=URLS) == p.Ineligible(
        "outside Google Ads' window: the call was 95 days before the conversion (at most 90 days)")


def test_google_ads_takes_gbraid_or_wbraid_when_there_is_no_gclid():
    plan = p.upload_build(dest("google_ads", **GOOGLE), call(marketing={"wbraid": "WB1"}), now=NOW, base_urls=URLS)
    assert plan.body["conversions"][0]["wbraid"] == "WB1" and "gclid" not in plan.body["conversions"][0]


def test_without_a_click_id_google_gets_an_enhanced_conversion_for_leads_with_the_hashed_e164_phone_when_allowed():
    plan = p.upload_build(dest("google_ads", hashed_phone_allowed=True, **GOOGLE), call(), now=NOW, base_urls=URLS)
    assert plan.body["conversions"][0]["userIdentifiers"] == [{"userIdentifierSource": "FIRST_PARTY", "hashedPhoneNumber": PHONE_GOOGLE}]
    assert "+14155550123" not in plan.encoded().decode()


def test_without_a_click_id_and_without_hashed_phones_google_is_not_eligible_and_says_why():
    assert p.upload_build(dest("google_ads", **GOOGLE), call(), now=NOW, base_urls=URLS) == p.Ineligible(
        "no Google click id (gclid, gbraid, wbraid) on the visit, not a Google call asset call, and no enhanced conversion: "
        "hashed phones are not allowed for this destination")
    anonymous = p.upload_build(dest("google_ads", hashed_phone_allowed=True, **GOOGLE), call(caller_number="anonymous"), now=NOW, base_urls=URLS)
    assert isinstance(anonymous, p.Ineligible) and "not a full international number" in anonymous.reason


def test_a_click_older_than_googles_90_days_is_not_eligible():
    old = call(marketing={"gclid": "G"}, click_at=CONVERTED - timedelta(days=91))
    assert p.upload_build(dest("google_ads", **GOOGLE), old, now=NOW, base_urls=URLS) == p.Ineligible(
        "outside Google Ads' click window: the click was 91 days before the conversion (at most 90 days)")


def test_google_adjustments_retract_by_order_id_and_restate_with_the_new_value():
    retract = p.upload_build(dest("google_ads", **GOOGLE), call(marketing={"gclid": "G"}), now=NOW, base_urls=URLS, adjustment="retraction")
    assert retract.rpc == "UploadConversionAdjustments"
    assert retract.body == {"customerId": "1234567890", "conversionAdjustments": [{
        "adjustmentType": "RETRACTION", "conversionAction": "customers/1234567890/conversionActions/987", "orderId": "call-42",
        "adjustmentDateTime": "2026-03-10 14:35:05-04:00",
    }], "partialFailure": True}
    restate = p.upload_build(dest("google_ads", **GOOGLE), call(revenue=Decimal("80"), marketing={"gbraid": "B"}), now=NOW, base_urls=URLS,
                             adjustment="restatement")
    assert restate.body["conversionAdjustments"][0]["adjustmentType"] == "RESTATEMENT"
    assert restate.body["conversionAdjustments"][0]["restatementValue"] == {"adjustedValue": 80.0, "currencyCode": "USD"}
    # Google takes adjustments of conversions at most 54 days old (CONVERSION_EXPIRED).
    late = p.upload_build(dest("google_ads", **GOOGLE), call(marketing={"gclid": "G"}), now=CONVERTED + timedelta(days=55), base_urls=URLS,
                          adjustment="retraction")
    assert late == p.Ineligible("retraction not sent: outside Google Ads' adjustment window: the conversion was 55 days ago (at most 54 days)")
    # Google documents adjustments for gclid and gbraid conversions, not wbraid ones.
    assert p.upload_build(dest("google_ads", **GOOGLE), call(marketing={"wbraid": "W"}), now=NOW, base_urls=URLS, adjustment="retraction") == p.Ineligible(
        "retraction not sent: Google Ads takes no adjustments of wbraid conversions")


def test_ga4_gets_a_measurement_protocol_event_with_the_client_id_of_the_ga_cookie():
    marketing = {"ga_client_id": "1234567890.1700000000", "utm_source": "google", "utm_medium": "cpc", "utm_campaign": "spring"}
    d = dest("ga4", account_id="G-ABC123", currency="EUR", value_from="fixed", fixed_value=Decimal("30"), credentials={"api_secret": "s3cr3t"})
    plan = p.upload_build(d, call(marketing=marketing), now=NOW, base_urls=URLS)
    assert plan.url == "https://ga.test/mp/collect?measurement_id=G-ABC123&api_secret=s3cr3t"
    assert plan.body == {
        "client_id": "1234567890.1700000000", "timestamp_micros": 1773167405000000,
        "events": [{"name": "phone_call_conversion", "params": {
            "value": 30.0, "currency": "EUR", "transaction_id": "call-42", "call_id": 42, "talk_time": 150,
            "source": "google", "medium": "cpc", "campaign": "spring",
        }}],
    }
    assert plan.token == ""


def test_ga4_without_a_client_id_or_past_72_hours_is_not_eligible():
    d = dest("ga4", account_id="G-ABC123")
    assert p.upload_build(d, call(), now=NOW, base_urls=URLS) == p.Ineligible("no GA4 client id: the visitor's page had no _ga cookie (or no DNI session)")
    late = p.upload_build(d, call(marketing={"ga_client_id": "1.2"}), now=CONVERTED + timedelta(hours=73), base_urls=URLS)
    assert late == p.Ineligible("outside GA4's window: the conversion was 3 days ago (at most 72 hours)")


def test_meta_gets_a_phone_call_event_with_fbc_from_the_fbclid_the_hashed_phone_and_the_call_as_event_id():
    d = dest("meta", account_id="555000111", hashed_phone_allowed=True, credentials={"access_token": "EAAB"})
    plan = p.upload_build(d, call(marketing={"fbclid": "IwAR2xyz"}), now=NOW, base_urls=URLS)
    assert plan.url == "https://graph.test/v24.0/555000111/events?access_token=EAAB"
    assert plan.body == {"data": [{
        "event_name": "Lead", "event_time": 1773167405, "event_id": "call-42", "action_source": "phone_call",
        "user_data": {"fbc": "fb.1.1773165600123.IwAR2xyz", "ph": [PHONE_META]},
        "custom_data": {"value": 125.5, "currency": "USD"},
    }]}


def test_meta_refuses_nothing_older_than_7_days_and_needs_an_fbclid_or_a_hashed_phone():
    d = dest("meta", account_id="555")
    assert p.upload_build(d, call(), now=NOW, base_urls=URLS) == p.Ineligible(
        "no fbclid on the visit, and no hashed phone (not allowed, or not a full international number)")
    assert p.upload_build(d, call(marketing={"fbclid": "F"}), now=CONVERTED + timedelta(days=8), base_urls=URLS) == p.Ineligible(
        "outside Meta's window: the conversion was 8 days ago (event_time at most 7 days back)")
    assert p.upload_build(d, call(marketing={"fbclid": "F"}), now=NOW, base_urls=URLS, adjustment="retraction") == p.Ineligible(
        "Meta's Conversions API takes no adjustments: the event stays as sent")


def test_microsoft_gets_an_offline_conversion_by_msclkid_and_adjustments_name_the_same_conversion():
    d = dest("microsoft", account_id="149000", conversion_action="Qualified call", trigger="payout",
             credentials={"developer_token": "BBD", "customer_id": "251000"})
    plan = p.upload_build(d, call(marketing={"msclkid": "abc123"}, payout_converted=True), now=NOW, base_urls=URLS)
    assert plan.url == "https://ms.test/CampaignManagement/v13/OfflineConversions/Apply"
    assert plan.body == {"OfflineConversions": [{
        "ConversionCurrencyCode": "USD", "ConversionName": "Qualified call", "ConversionTime": "2026-03-10T18:30:05Z",
        "ConversionValue": 40.0, "MicrosoftClickId": "abc123",
    }]}
    assert plan.headers == {"DeveloperToken": "BBD", "CustomerId": "251000", "CustomerAccountId": "149000"} and plan.token == "microsoft"
    retract = p.upload_build(d, call(marketing={"msclkid": "abc123"}), now=NOW, base_urls=URLS, adjustment="retraction")
    assert retract.url == "https://ms.test/CampaignManagement/v13/OfflineConversionAdjustments/Apply"
    assert retract.body == {"OfflineConversionAdjustments": [{
        "AdjustmentType": "Retract", "AdjustmentTime": "2026-03-10T18:35:05Z", "ConversionName": "Qualified call",
        "ConversionTime": "2026-03-10T18:30:05Z", "MicrosoftClickId": "abc123",
    }]}


def test_microsoft_needs_an_msclkid_within_90_days():
    d = dest("microsoft", account_id="1", conversion_action="Calls")
    assert p.upload_build(d, call(), now=NOW, base_urls=URLS) == p.Ineligible("no Microsoft click id (msclkid) on the visit")
    old = call(marketing={"msclkid": "m"}, click_at=CONVERTED - timedelta(days=100))
    assert "outside Microsoft Advertising's click window" in p.upload_build(d, old, now=NOW, base_urls=URLS).reason


@pytest.mark.parametrize("consent, eligible", [("granted", True), ("yes", True), ("denied", False), (None, False)])
def test_a_destination_requiring_consent_sends_only_what_the_landing_page_consented_to(consent, eligible):
    marketing = {"gclid": "G", **({"consent": consent} if consent else {})}
    plan = p.upload_build(dest("google_ads", consent_required=True, **GOOGLE), call(marketing=marketing), now=NOW, base_urls=URLS)
    assert isinstance(plan, p.Plan) is eligible
    if not eligible:
        assert plan.reason == "no consent: the visitor's landing page did not report consent=granted"


def test_qualified_calls_need_an_answer_and_the_minimum_talk_time():
    d = dest("local", trigger="qualified", min_talk_time=120)
    assert p.triggered(d, call(talk_time=120))
    assert not p.triggered(d, call(talk_time=119))
    assert not p.triggered(d, call(answered=False, talk_time=0))
    assert not p.triggered(dest("local", trigger="payout"), call())


def test_the_platforms_answers_read_as_sent_refused_or_retry():
    plan = p.Plan(url="", body={}, platform_id="call-42")
    assert p.answer_read("ga4", status=204, body=b"", plan=plan) == p.Outcome("sent", "accepted", "call-42")
    assert p.answer_read("meta", status=400, body=b'{"error":{"message":"Invalid parameter"}}', plan=plan) == p.Outcome(
        "refused", "HTTP 400: Invalid parameter")
    assert p.answer_read("meta", status=200, body=b'{"events_received":1,"fbtrace_id":"AbC"}', plan=plan) == p.Outcome(
        "sent", "received by Meta (1 event)", "AbC")
    assert p.answer_read("microsoft", status=200, body=b'{"PartialErrors":[{"Message":"Click id not found"}]}', plan=plan).status == "refused"
    assert p.answer_read("ga4", status=503, body=b"", plan=plan).status == "retry"
    assert p.answer_read("ga4", status=204, body=b"", plan=plan).status == "sent"


def test_a_ga_cookie_gives_its_client_id():
    assert p.ga_client_id("GA1.1.1234567890.1700000000") == "1234567890.1700000000"
    assert p.ga_client_id("1234.5678") == "1234.5678"
    assert p.ga_client_id("<script>") is None
