from calltrack.checks import calltrack_settings, production_settings


def ids(messages):
    return {m.id for m in messages}


def test_debug_off_with_the_development_key_and_no_hosts_is_refused(settings):
    settings.DEBUG = False
    settings.SECRET_KEY = settings.INSECURE_SECRET_KEY
    settings.ALLOWED_HOSTS = []
    assert {"calltrack.E001", "calltrack.E002"} <= ids(production_settings())


def test_debug_off_with_signature_checks_off_is_refused(settings):
    settings.DEBUG = False
    settings.SECRET_KEY = "k" * 20 + "Zq9!xY7#wV5$uT3%sR1^"
    settings.ALLOWED_HOSTS = ["calls.example.com"]
    settings.CALLTRACK_VALIDATE_TWILIO_SIGNATURE = False
    assert ids(production_settings()) == {"calltrack.E003"}


def test_secure_production_settings_pass(settings):
    settings.DEBUG = False
    settings.SECRET_KEY = "k" * 20 + "Zq9!xY7#wV5$uT3%sR1^"
    settings.ALLOWED_HOSTS = ["calls.example.com"]
    settings.CALLTRACK_VALIDATE_TWILIO_SIGNATURE = True
    settings.TWILIO_AUTH_TOKEN = "twilio-auth-token"
    assert production_settings() == []


def test_debug_off_without_a_twilio_auth_token_is_refused_whatever_the_carrier(settings):
    settings.DEBUG = False
    settings.SECRET_KEY = "k" * 20 + "Zq9!xY7#wV5$uT3%sR1^"
    settings.ALLOWED_HOSTS = ["calls.example.com"]
    settings.CALLTRACK_CARRIER = "local"
    settings.TWILIO_AUTH_TOKEN = ""
    assert ids(production_settings()) == {"calltrack.E004"}


def test_development_settings_pass(settings):
    settings.DEBUG = True
    assert production_settings() == []


def test_bad_failsafe_and_region_are_reported(settings):
    settings.CALLTRACK_FAILSAFE_NUMBER = "12"
    settings.CALLTRACK_DEFAULT_REGION = "XX"
    assert {"calltrack.E011", "calltrack.E012"} <= ids(calltrack_settings())
