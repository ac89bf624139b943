import pytest
from django.core.exceptions import ValidationError

from calltrack import phone
from calltrack.fields import validate_send_digits


@pytest.mark.parametrize(
    "raw, e164",
    [("(415) 555-2671", "+14155552671"), ("+1 415 555 2671", "+14155552671"), ("1-800-555-0100", "+18005550100"), ("+44 20 7946 0000", "+442079460000")],
)
def test_numbers_are_normalized_to_e164_in_the_default_region(raw, e164):
    assert phone.to_e164(raw) == e164


@pytest.mark.parametrize("raw, reason", [("555", "too short"), ("abc", "it is not a number"), ("", "it is empty"), ("+1415555267112345", "too long")])
def test_bad_numbers_say_the_value_and_why(raw, reason):
    with pytest.raises(phone.InvalidPhoneNumber) as info:
        phone.to_e164(raw)
    assert str(info.value) == f"'{raw}' is not a valid phone number: {reason}."


def test_national_format_uses_the_configured_region(settings):
    assert phone.to_e164("020 7946 0000", region="GB") == "+442079460000"


def test_number_type_and_area_code_are_derived():
    assert phone.number_type("+18005550100") == "toll_free"
    assert phone.number_type("+14155552671") == "local"
    assert phone.area_code("+14155552671") == "415"
    assert phone.area_code("+442079460000") == "20"


@pytest.mark.parametrize("digits", ["123", "ww123#", "*9w1", "W5"])
def test_valid_send_digits(digits):
    validate_send_digits(digits)


@pytest.mark.parametrize("digits, msg", [("12a", "'a'"), ("1-2", "'-'"), ("www", "only pauses")])
def test_invalid_send_digits_are_named(digits, msg):
    with pytest.raises(ValidationError) as info:
        validate_send_digits(digits)
    assert msg in str(info.value)
