import pytest

from calltrack.checks import calltrack_settings, production_settings

STRONG_KEY = "k" * 30 + "Zq9!xY7#wV5$uT3%sR1^"  # 50 characters, 20 distinct: what Django's security.W009 accepts


def ids(messages):
    return {m.id for m in messages}


def test_debug_off_with_the_development_key_and_no_hosts_is_refused(settings):
    settings.DEBUG = False
    settings.SECRET_KEY = settings.INSECURE_SECRET_KEY
    settings.ALLOWED_HOSTS = []
    assert {"calltrack.E001", "calltrack.E002"} <= ids(production_settings())


def test_debug_off_with_signature_checks_off_is_refused(settings):
    settings.DEBUG = False
    settings.SECRET_KEY = STRONG_KEY
    settings.ALLOWED_HOSTS = ["calls.example.com"]
    settings.CALLTRACK_VALIDATE_TWILIO_SIGNATURE = False
    assert ids(production_settings()) == {"calltrack.E003"}


def test_secure_production_settings_pass(settings):
    settings.DEBUG = False
    settings.SECRET_KEY = STRONG_KEY
    settings.ALLOWED_HOSTS = ["calls.example.com"]
    settings.CALLTRACK_VALIDATE_TWILIO_SIGNATURE = True
    settings.TWILIO_AUTH_TOKEN = "twilio-auth-token"
    assert production_settings() == []


def test_debug_off_without_a_twilio_auth_token_is_refused_whatever_the_carrier(settings):
    settings.DEBUG = False
    settings.SECRET_KEY = STRONG_KEY
    settings.ALLOWED_HOSTS = ["calls.example.com"]
    settings.CALLTRACK_CARRIER = "local"
    settings.TWILIO_AUTH_TOKEN = ""
    assert ids(production_settings()) == {"calltrack.E004"}


def _production(settings, **values):
    settings.DEBUG = False
    settings.ALLOWED_HOSTS = ["calls.example.com"]
    settings.CALLTRACK_VALIDATE_TWILIO_SIGNATURE = True
    settings.TWILIO_AUTH_TOKEN = "twilio-auth-token"
    for name, value in values.items():
        setattr(settings, name, value)


@pytest.mark.parametrize(
    "key",
    [
        "changeme" * 5,  # 40 characters of a repeated word
        "abcde" * 9,  # 45 characters, 5 distinct
        "ab" * 30,  # long, but 2 distinct characters
        "django-insecure-" + "x1y2z3w4v5" * 5,  # a development key Django generated
    ],
)
def test_a_key_django_calls_weak_is_refused_in_production(settings, key):
    _production(settings, SECRET_KEY=key)
    messages = production_settings()
    assert ids(messages) == {"calltrack.E001"}
    assert "security.W009" in messages[0].msg


def test_a_weak_fallback_key_is_refused_in_production(settings):
    _production(settings, SECRET_KEY=STRONG_KEY, SECRET_KEY_FALLBACKS=[STRONG_KEY[::-1], "changeme" * 5])
    messages = production_settings()
    assert ids(messages) == {"calltrack.E001"}
    assert "security.W025" in messages[0].msg and "SECRET_KEY_FALLBACKS[1]" in messages[0].msg


def test_development_settings_pass(settings):
    settings.DEBUG = True
    assert production_settings() == []


def test_bad_failsafe_and_region_are_reported(settings):
    settings.CALLTRACK_FAILSAFE_NUMBER = "12"
    settings.CALLTRACK_DEFAULT_REGION = "XX"
    assert {"calltrack.E011", "calltrack.E012"} <= ids(calltrack_settings())


@pytest.mark.parametrize("prefix", [0, 129])
def test_an_ipv6_prefix_outside_1_to_128_bits_is_reported(settings, prefix):
    settings.CALLTRACK_IPV6_PREFIX = prefix
    assert "calltrack.E015" in ids(calltrack_settings())


def test_the_client_address_groups_ipv6_by_its_prefix_and_keeps_ipv4_per_address():
    from calltrack.middleware import address_group

    assert address_group("2001:db8:1:2:a:b:c:d", 64) == "2001:db8:1:2::"
    assert address_group("2001:DB8:1:2::1", 48) == "2001:db8:1::"
    assert address_group("2001:db8:1:2:a:b:c:d", 128) == "2001:db8:1:2:a:b:c:d"
    assert address_group("::ffff:198.51.100.7", 64) == "198.51.100.7"  # an IPv4 client seen through a dual stack
    assert address_group("198.51.100.7", 64) == "198.51.100.7"
    assert address_group("not-an-address", 64) == "not-an-address"


def test_a_throttle_rate_that_is_not_a_rate_is_reported(settings):
    settings.CALLTRACK_API_THROTTLE_SCHEMA = "fast"
    problems = [m for m in calltrack_settings() if m.id == "calltrack.E016"]
    assert len(problems) == 1 and "'fast'" in problems[0].msg


def test_drf_rate_spellings_are_still_accepted(settings):
    settings.CALLTRACK_API_THROTTLE_SCHEMA = "10/hr"
    assert "calltrack.E016" not in ids(calltrack_settings())
