"""Validation of the numbers models' rules."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from calltrack.numbers.models import PortRequest, ReceivingNumber
from tests.numbers.factories import NumberPoolFactory, ReceivingNumberFactory, TrackingNumberFactory
from tests.tracking.factories import CampaignFactory
from tracking.models import IVRMenu

pytestmark = pytest.mark.django_db


def errors_of(obj) -> dict:
    with pytest.raises(ValidationError) as info:
        obj.full_clean()
    return info.value.message_dict


def test_receiving_number_is_normalized_and_country_derived():
    line = ReceivingNumber(number="(303) 555-0101", label="Denver")
    line.full_clean()
    assert line.number == "+13035550101" and line.country == "US"


def test_receiving_number_bad_number_is_named():
    assert errors_of(ReceivingNumber(number="+1 303", label="x"))["number"] == ["'+1 303' is not a valid phone number: too short."]


@pytest.mark.parametrize("digits", ["12x", "1 2", "www"])
def test_receiving_number_bad_extension_digits(digits):
    assert "extension_digits" in errors_of(ReceivingNumber(number="+13035550101", label="x", extension_digits=digits))


def test_receiving_number_send_digits_turn_the_delay_into_pauses():
    line = ReceivingNumber(number="+13035550101", extension_digits="101#", digits_delay=2)
    assert line.send_digits == "wwww101#"


def test_receiving_number_ring_timeout_range():
    assert "ring_timeout" in errors_of(ReceivingNumber(number="+13035550101", label="x", ring_timeout=4))
    assert "ring_timeout" in errors_of(ReceivingNumber(number="+13035550101", label="x", ring_timeout=601))


def test_receiving_number_forward_needs_a_target_that_is_not_itself():
    line = ReceivingNumberFactory(no_answer_action="forward")
    assert "no_answer_forward_to" in errors_of(line)
    line.no_answer_forward_to = line
    assert "itself" in errors_of(line)["no_answer_forward_to"][0]


def test_receiving_number_set_to_a_menu_needs_the_menu_and_queue_needs_nothing_more():
    line = ReceivingNumberFactory(no_answer_action="menu")
    assert errors_of(line)["no_answer_menu"] == ["Choose the menu the caller hears."]
    line.no_answer_menu = IVRMenu.objects.create(campaign=CampaignFactory(), name="Nobody free", prompt="Press 1.")
    line.full_clean()
    ReceivingNumberFactory(no_answer_action="queue").full_clean()


def test_tracking_number_type_and_area_code_are_derived():
    assert TrackingNumberFactory(number="+18885550111").number_type == "toll_free"
    local = TrackingNumberFactory(number="+14155550112")
    assert (local.number_type, local.area_code, local.country) == ("local", "415", "US")


def test_static_number_cannot_be_in_a_pool():
    number = TrackingNumberFactory.build(kind="static", pool=NumberPoolFactory())
    assert "pool" in errors_of(number)


def test_pool_number_cannot_carry_fixed_marketing_data():
    number = TrackingNumberFactory.build(kind="pool", pool=NumberPoolFactory(), marketing_data={"utm_source": "x"})
    assert "marketing_data" in errors_of(number)


def test_tracking_number_filters_are_validated():
    number = TrackingNumberFactory.build(filters=[{"action": "maybe", "key": "caller_state", "op": "present"}])
    assert "filters" in errors_of(number)


def test_duplicate_tracking_number_is_refused():
    TrackingNumberFactory(number="+14155550112")
    assert "number" in errors_of(TrackingNumberFactory.build(number="(415) 555-0112"))


def test_pool_fallback_policy_needs_a_number():
    assert "fallback_number" in errors_of(NumberPoolFactory.build(overflow_policy="fallback", campaign=NumberPoolFactory().campaign))


def test_pool_min_cannot_exceed_max_and_origins_are_checked():
    pool = NumberPoolFactory.build(autoscale_min=10, autoscale_max=5, allowed_origins="example.com", campaign=NumberPoolFactory().campaign)
    errors = errors_of(pool)
    assert "autoscale_min" in errors and "allowed_origins" in errors


def test_pool_key_is_generated():
    assert NumberPoolFactory(name="Main Site").key == "main-site"


def test_port_request_numbers_are_validated_and_loa_required():
    request = PortRequest(numbers=["+14155550199", "123"], loa_name="", loa_address="")
    assert "number 2: '123' is not a valid phone number" in errors_of(request)["numbers"][0]
    request = PortRequest(numbers=["(415) 555-0199"])
    with pytest.raises(ValidationError, match="LOA"):
        request.full_clean()
    assert request.numbers == ["+14155550199"]
