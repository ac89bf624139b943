"""Signed /sms/incoming (issue 29): each text stored once and credited exactly as a call to the same number at the
same moment; never a 500; every answer valid messaging TwiML."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from calltrack.numbers.models import LocalCarrierNumber
from calltrack.numbers.providers.local import LocalCarrier
from calltrack.numbers.services.lifecycle import numbers_configure
from tests.numbers.factories import NumberPoolFactory, NumberSessionFactory, TrackingNumberFactory
from tests.numbers.test_twilio_carrier import API, carrier
from tests.tracking.factories import CampaignFactory, CampaignHandlerFactory, HandlerFactory, SourceFactory
from tracking.models import Call, TextDirection, TextMessage, TextStatus

pytestmark = pytest.mark.django_db
TEXTER = "+14155550100"
NOW = "2026-05-04 15:00:00Z"
UTM = {"utm_source": "google", "utm_medium": "cpc", "utm_campaign": "spring", "gclid": "Cj0KCQ"}


def text(twilio, to, sid="SM" + "1" * 32, sender=TEXTER, body="Hi, is this still available?", signature=None, **extra):
    return twilio.post("/sms/incoming", {"MessageSid": sid, "SmsSid": sid, "AccountSid": "AC1", "From": sender, "To": to,
                                         "Body": body, "NumMedia": "0", **extra}, signature=signature)


@pytest.fixture
def pool():
    campaign = CampaignFactory(name="Roofing", failsafe_number="+13035550199")
    CampaignHandlerFactory(campaign=campaign, handler=HandlerFactory())
    return NumberPoolFactory(campaign=campaign, source=SourceFactory(name="Website"), attribution_window=72)


@pytest.fixture
def pool_number(pool):
    return TrackingNumberFactory(kind="pool", pool=pool, campaign=pool.campaign)


def visitor(pool, number, *, last_seen):
    return NumberSessionFactory(pool=pool, tracking_number=number, visitor_id="visitor-1", started_at=last_seen - timedelta(minutes=5),
                                last_seen_at=last_seen, expires_at=last_seen + timedelta(minutes=30), marketing_data=UTM,
                                landing_page="https://roof.example.com/offer", referrer="https://www.google.com/")


def test_a_visitors_text_to_a_pool_number_is_credited_to_the_visitors_session_and_utm_as_a_call_would_be(
        twilio, pool, pool_number, assert_valid_messaging_twiml):
    with time_machine.travel(NOW, tick=False):
        session = visitor(pool, pool_number, last_seen=timezone.now() - timedelta(hours=2))
        response = text(twilio, pool_number.number, FromCity="OAKLAND", FromState="CA", FromZip="94601", FromCountry="US")
        call_response = twilio.post("/voice/incoming", {"CallSid": "CA1", "From": TEXTER, "To": pool_number.number, "CallStatus": "ringing",
                                                        "FromCity": "OAKLAND", "FromState": "CA", "FromZip": "94601", "FromCountry": "US"})
    assert response.status_code == 200 and response["Content-Type"] == "text/xml"
    assert_valid_messaging_twiml(response.content)
    assert call_response.status_code == 200
    sms = TextMessage.objects.get()
    call = Call.objects.get()
    assert sms.session == session and sms.marketing_data == UTM
    assert (sms.visitor_id, sms.landing_page, sms.referrer) == ("visitor-1", "https://roof.example.com/offer", "https://www.google.com/")
    assert (sms.campaign, sms.source) == (pool.campaign, pool.source)
    assert (sms.direction, sms.status, sms.contact_number, sms.to_number) == (TextDirection.INBOUND, TextStatus.RECEIVED, TEXTER, pool_number.number)
    # Exactly the call's credit: the same campaign, source, session, marketing data, geo and tags.
    for field in ("campaign_id", "source_id", "session_id", "marketing_data", "landing_page", "referrer", "visitor_id",
                  "caller_city", "caller_state", "caller_zip", "caller_country", "tags"):
        assert getattr(sms, field) == getattr(call, field), field
    assert sms.tags["utm_campaign"] == "spring" and sms.tags["gclid"] == "Cj0KCQ" and sms.tags["caller_state"] == "CA"


def test_a_text_after_the_attribution_window_is_not_credited_to_the_visitor(twilio, pool, pool_number):
    with time_machine.travel(NOW, tick=False):
        visitor(pool, pool_number, last_seen=timezone.now() - timedelta(hours=72, minutes=1))
        text(twilio, pool_number.number)
    sms = TextMessage.objects.get()
    assert sms.session is None and sms.marketing_data == {} and sms.visitor_id == ""
    assert "utm_source" not in sms.tags
    # Still the pool's campaign and source, as a call then.
    assert (sms.campaign, sms.source) == (pool.campaign, pool.source)


def test_a_text_to_a_static_number_carries_its_source_marketing_data_and_media(twilio):
    source = SourceFactory(name="Billboard")
    number = TrackingNumberFactory(kind="static", source=source, marketing_data={"utm_source": "billboard"})
    media = "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME1"
    text(twilio, number.number, body="photo", NumMedia="2", MediaUrl0=media, MediaUrl1="http://insecure.example.com/x.jpg")
    sms = TextMessage.objects.get()
    assert (sms.source, sms.campaign, sms.session) == (source, number.campaign, None)
    assert sms.marketing_data == {"utm_source": "billboard"} and sms.tags["source"] == source.source_id
    assert sms.media_urls == [media]  # only https URLs are kept


def test_a_repeated_message_sid_is_stored_once_and_answered_without_sending_again(twilio, pool_number, assert_valid_messaging_twiml):
    first = text(twilio, pool_number.number, sid="SM" + "2" * 32)
    again = text(twilio, pool_number.number, sid="SM" + "2" * 32, body="a retried delivery")
    assert first.status_code == again.status_code == 200
    assert_valid_messaging_twiml(again.content)
    assert TextMessage.objects.count() == 1
    assert TextMessage.objects.get().body == "Hi, is this still available?"


def test_an_unsigned_or_badly_signed_text_is_refused_before_anything_is_stored(twilio, pool_number):
    unsigned = text(twilio, pool_number.number, signature="")
    forged = text(twilio, pool_number.number, signature="bm90IGEgc2lnbmF0dXJl")
    assert unsigned.status_code == forged.status_code == 403
    assert not TextMessage.objects.exists()


@pytest.mark.parametrize("params", [
    {"MessageSid": "SM" + "3" * 32, "From": TEXTER},  # no To
    {"MessageSid": "", "From": TEXTER, "To": "+14152000000"},
    {"MessageSid": "SM bad!", "From": TEXTER, "To": "+14152000000"},
    {"MessageSid": "SM" + "3" * 32, "From": TEXTER, "To": "not a number \u202e\ufffe"},
    {"MessageSid": "SM" + "3" * 32, "From": TEXTER, "To": "+1" + "9" * 300},
    {"MessageSid": "x" * 500, "From": TEXTER, "To": "+14152000000"},
])
def test_unreadable_parameters_get_the_empty_response_never_a_500(twilio, params, assert_valid_messaging_twiml):
    response = twilio.post("/sms/incoming", params)
    assert response.status_code == 200, response.content
    assert_valid_messaging_twiml(response.content)
    assert not TextMessage.objects.exists()


def test_nul_bytes_odd_unicode_and_a_huge_body_are_stored_cleaned(twilio, pool_number, assert_valid_messaging_twiml):
    body = "caf\u00e9 \U0001f3e0 \x00zero\x07bell \ufffe lone " + "x" * 20000
    response = text(twilio, pool_number.number, body=body, FromCity="San\x00 Jos\u00e9", NumMedia="99999999999999")
    assert response.status_code == 200
    assert_valid_messaging_twiml(response.content)
    sms = TextMessage.objects.get()
    assert sms.body.startswith("caf\u00e9 \U0001f3e0 zerobell  lone xxx") and len(sms.body) == 1600
    assert sms.caller_city == "San Jos\u00e9" and sms.media_urls == []


def test_a_body_that_is_not_utf8_is_stored_with_replacement_characters(client, settings, pool_number, assert_valid_messaging_twiml):
    # Invalid UTF-8 (a lone surrogate's bytes) cannot be signed as Twilio signs text: checked with signatures off.
    settings.CALLTRACK_VALIDATE_TWILIO_SIGNATURE = False
    raw = b"MessageSid=SM" + b"4" * 32 + b"&From=%2B14155550100&To=" + pool_number.number.replace("+", "%2B").encode() + b"&Body=bad%ED%A0%80end"
    response = client.post("/sms/incoming", raw, content_type="application/x-www-form-urlencoded")
    assert response.status_code == 200
    assert_valid_messaging_twiml(response.content)
    assert TextMessage.objects.get().body.startswith("bad") and TextMessage.objects.get().body.endswith("end")


def test_a_text_to_a_number_we_do_not_own_is_kept_without_credit(twilio, assert_valid_messaging_twiml):
    response = text(twilio, "+14155559876")
    assert_valid_messaging_twiml(response.content)
    sms = TextMessage.objects.get()
    assert (sms.tracking_number, sms.campaign, sms.source) == (None, None, None)


def test_buying_and_configuring_a_number_sets_its_sms_url_at_the_local_carrier(settings):
    settings.CALLTRACK_PUBLIC_BASE_URL = "https://calls.example.com"
    local = LocalCarrier()
    bought = local.buy(number="+14155550123", voice_url="https://calls.example.com/voice/incoming", status_url="https://calls.example.com/voice/status",
                       sms_url="https://calls.example.com/sms/incoming")
    row = LocalCarrierNumber.objects.get(number="+14155550123")
    assert row.sms_url == "https://calls.example.com/sms/incoming"
    row.sms_url = ""
    row.save()
    tn = TrackingNumberFactory(number="+14155550123", carrier="local", carrier_id=bought.carrier_id)
    assert numbers_configure(numbers=[tn], carrier=local) == []
    assert LocalCarrierNumber.objects.get(number="+14155550123").sms_url == "https://calls.example.com/sms/incoming"


def test_numbers_configure_sets_the_sms_url_at_twilio(settings):
    settings.CALLTRACK_PUBLIC_BASE_URL = "https://calls.example.com"
    twilio, fake = carrier((200, {"sid": "PN1", "phone_number": "+14155550123"}))
    tn = TrackingNumberFactory(number="+14155550123", carrier="twilio", carrier_id="PN1")
    assert numbers_configure(numbers=[tn], carrier=twilio) == []
    request = fake.requests[0]
    assert (request["method"], request["uri"]) == ("POST", f"{API}/IncomingPhoneNumbers/PN1.json")
    assert request["data"]["SmsUrl"] == "https://calls.example.com/sms/incoming"
    assert request["data"]["SmsMethod"] == "POST"
    assert request["data"]["VoiceUrl"] == "https://calls.example.com/voice/incoming"


def test_buying_at_twilio_sets_the_sms_url():
    twilio, fake = carrier((201, {"sid": "PN" + "1" * 32, "phone_number": "+14155550123"}))
    twilio.buy(number="+14155550123", voice_url="https://c/voice/incoming", status_url="https://c/voice/status", sms_url="https://c/sms/incoming")
    assert fake.requests[0]["data"]["SmsUrl"] == "https://c/sms/incoming"


def test_a_text_with_an_auto_reply_costs_a_fixed_number_of_statements(twilio, django_assert_num_queries):
    from tracking.models import TextRoute

    number = TrackingNumberFactory(campaign=CampaignFactory())
    TextRoute.objects.create(campaign=number.campaign, auto_reply="Thanks!")
    text(twilio, number.number, sid="SM" + "5" * 32)  # the campaign's routing configuration is cached from here on
    # The view's transaction (a savepoint inside the test's): the MessageSid look-up; the tracking number with its
    # campaign, source and pool; the INSERT in its savepoint (2 + 1); the text route; the opt-out check; the
    # auto-reply's INSERT; the message.sent and message.received webhooks of the campaign (one read each).
    with django_assert_num_queries(12):
        response = text(twilio, number.number, sid="SM" + "6" * 32)
    assert response.status_code == 200 and b"<Message" in response.content
