"""Validation of the tracking models' rules, as the admin, API and imports see them (full_clean)."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from tests.numbers.factories import ReceivingNumberFactory, TrackingNumberFactory
from tests.tracking.factories import CampaignFactory, HandlerFactory, SourceFactory
from tracking.models import Collaborator, Contact, IVROption, Webhook

pytestmark = pytest.mark.django_db


def errors_of(obj) -> dict:
    with pytest.raises(ValidationError) as info:
        obj.full_clean()
    return info.value.message_dict


def test_source_id_is_generated_unique_from_the_name():
    a = SourceFactory(name="Google Ads")
    b = SourceFactory(name="Google Ads")
    assert a.source_id == "google-ads" and b.source_id == "google-ads-2"


def test_campaign_id_is_generated_when_blank_and_kept_when_given():
    assert CampaignFactory(name="Auto Leads").campaign_id == "auto-leads"
    assert CampaignFactory(name="X", campaign_id="ext-42").campaign_id == "ext-42"


def test_handler_weight_zero_is_refused():
    assert "weight" in errors_of(HandlerFactory.build(receiving_number=ReceivingNumberFactory(), weight=0))


def test_handler_negative_cap_is_refused():
    assert "daily_cap" in errors_of(HandlerFactory.build(receiving_number=ReceivingNumberFactory(), daily_cap=-1))


def test_handler_hourly_cap_above_daily_cap_is_refused():
    errors = errors_of(HandlerFactory.build(receiving_number=ReceivingNumberFactory(), hourly_cap=50, daily_cap=10))
    assert errors["hourly_cap"] == ["Cannot be above the daily cap (10)."]


def test_handler_ring_timeout_must_be_5_to_600():
    assert "ring_timeout" in errors_of(HandlerFactory.build(receiving_number=ReceivingNumberFactory(), ring_timeout=3))
    assert "ring_timeout" in errors_of(HandlerFactory.build(receiving_number=ReceivingNumberFactory(), ring_timeout=601))


@pytest.mark.parametrize(
    "hours, message",
    [({"mon": ["17:00-09:00"]}, "closes before it opens"), ({"mon": ["09:00-12:00", "11:00-14:00"]}, "overlaps")],
)
def test_handler_inverted_or_overlapping_hours_are_refused(hours, message):
    handler = HandlerFactory.build(receiving_number=ReceivingNumberFactory(), always_open=False, business_hours=hours)
    assert message in errors_of(handler)["business_hours"][0]


def test_handler_that_is_never_open_is_refused():
    handler = HandlerFactory.build(receiving_number=ReceivingNumberFactory(), always_open=False, business_hours={})
    assert "always open" in errors_of(handler)["business_hours"][0]


def test_handler_time_zone_must_be_iana():
    assert "IANA" in errors_of(HandlerFactory.build(receiving_number=ReceivingNumberFactory(), timezone="EST5EDTX"))["timezone"][0]


def test_handler_tag_criteria_are_validated():
    handler = HandlerFactory.build(receiving_number=ReceivingNumberFactory(), tag_criteria=[{"key": "caller_state", "op": "near"}])
    assert "op 'near'" in errors_of(handler)["tag_criteria"][0]


def test_campaign_bad_failsafe_number_names_the_value():
    campaign = CampaignFactory.build(failsafe_number="12")
    assert errors_of(campaign)["failsafe_number"] == ["'12' is not a valid phone number: too short."]


def test_campaign_failsafe_number_is_normalized():
    campaign = CampaignFactory.build(failsafe_number="(312) 555-0103")
    campaign.full_clean()
    assert campaign.failsafe_number == "+13125550103"


def test_campaign_say_greeting_needs_text():
    assert "greeting_text" in errors_of(CampaignFactory.build(greeting_kind="say", greeting_text=" "))


def test_ivr_option_rules():
    campaign = CampaignFactory()
    assert "digit" in errors_of(IVROption(campaign=campaign, digit="a", tag_key="x"))
    assert "handler" in errors_of(IVROption(campaign=campaign, digit="1", action="handler"))
    assert "tag_key" in errors_of(IVROption(campaign=campaign, digit="1", action="tag"))


def test_contact_number_is_validated():
    assert "phone_number" in errors_of(Contact(phone_number="not a number"))


def test_collaborator_links_exactly_one_party(django_user_model):
    user = django_user_model.objects.create(username="c")
    with pytest.raises(ValidationError, match="exactly one"):
        Collaborator(user=user).full_clean()


def test_webhook_needs_known_events():
    hook = Webhook(campaign=CampaignFactory(), url="https://example.com/h", events=["call.exploded"])
    assert "events" in errors_of(hook)


def test_source_static_number_cap_blocks_one_more_static_number():
    source = SourceFactory(static_number_cap=1)
    TrackingNumberFactory(source=source)
    extra = TrackingNumberFactory.build(source=source, campaign=CampaignFactory())
    assert "static number cap" in errors_of(extra)["source"][0]
