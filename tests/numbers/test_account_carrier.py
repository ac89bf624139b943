"""An account's own Twilio subaccount (issue 30): its numbers are bought, configured and released there, its texts,
queue dials and recordings go through it; an account without one uses the install's TWILIO_* settings. The SDK
talks to a fake HTTP client: the tests read the exact URLs and credentials of its requests."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from calltrack.models import Account
from calltrack.numbers.models import NumberStatus, TrackingNumber
from calltrack.numbers.providers import get_carrier
from calltrack.numbers.providers import twilio as twilio_module
from calltrack.numbers.services.lifecycle import BuyTarget, numbers_buy, numbers_configure, numbers_release_quarantined
from calltrack.numbers.services.recordings import recording_carrier
from calltrack.numbers.services.texts import text_send
from routing.services.queue import _carrier_dial
from tests.numbers.factories import TrackingNumberFactory
from tests.numbers.test_twilio_carrier import FakeTwilio, page
from tests.tracking.factories import CampaignFactory
from tracking.models import Call, TextPurpose

pytestmark = pytest.mark.django_db

INSTALL_SID, INSTALL_TOKEN = "AC" + "1" * 32, "install-token"
SUB_SID, SUB_TOKEN = "AC" + "b" * 32, "c" * 32
INSTALL_API = f"https://api.twilio.com/2010-04-01/Accounts/{INSTALL_SID}"
SUB_API = f"https://api.twilio.com/2010-04-01/Accounts/{SUB_SID}"


@pytest.fixture
def fake(settings, monkeypatch) -> FakeTwilio:
    """CALLTRACK_CARRIER=twilio with the install's credentials; every SDK client the code builds talks to one fake."""
    settings.CALLTRACK_CARRIER = "twilio"
    settings.TWILIO_ACCOUNT_SID, settings.TWILIO_AUTH_TOKEN = INSTALL_SID, INSTALL_TOKEN
    settings.CALLTRACK_PUBLIC_BASE_URL = "https://calls.example.com"
    fake = FakeTwilio()
    real = twilio_module.Client
    monkeypatch.setattr(twilio_module, "Client", lambda sid, token, http_client=None: real(sid, token, http_client=fake))
    return fake


@pytest.fixture
def bravo() -> Account:
    Account.objects.get_or_create(slug="default", defaults={"name": "Default"})  # the first account is another (after a flush)
    return Account.objects.create(name="Bravo Roofing", slug="bravo", twilio_account_sid=SUB_SID, twilio_auth_token=SUB_TOKEN)


def _offer(number: str) -> tuple[int, dict]:
    return 200, page("available_phone_numbers", [{"phone_number": number, "region": "CA", "locality": "San Francisco",
                                                  "iso_country": "US", "capabilities": {"voice": True}}])


def test_numbers_of_an_account_with_a_subaccount_are_searched_and_bought_in_it(fake, bravo):
    fake.answers += [_offer("+14155550123"), (201, {"sid": "PN" + "1" * 32, "phone_number": "+14155550123", "account_sid": SUB_SID})]
    bought = numbers_buy(count=1, target=BuyTarget(campaign=CampaignFactory(account=bravo)), area_code="415")
    assert [r["uri"] for r in fake.requests] == [f"{SUB_API}/AvailablePhoneNumbers/US/Local.json", f"{SUB_API}/IncomingPhoneNumbers.json"]
    assert {r["auth"] for r in fake.requests} == {(SUB_SID, SUB_TOKEN)}
    assert TrackingNumber.objects.get(number="+14155550123").account_id == bravo.pk == bought[0].account_id


def test_numbers_of_an_account_without_a_subaccount_are_bought_in_the_install_account(fake, bravo):
    default = Account.objects.get_or_create(slug="default", defaults={"name": "Default"})[0]
    fake.answers += [_offer("+14155550124"), (201, {"sid": "PN" + "2" * 32, "phone_number": "+14155550124", "account_sid": INSTALL_SID})]
    numbers_buy(count=1, target=BuyTarget(campaign=CampaignFactory(account=default)), area_code="415")
    assert [r["uri"] for r in fake.requests] == [f"{INSTALL_API}/AvailablePhoneNumbers/US/Local.json", f"{INSTALL_API}/IncomingPhoneNumbers.json"]
    assert {r["auth"] for r in fake.requests} == {(INSTALL_SID, INSTALL_TOKEN)}


def test_configure_points_each_number_at_us_in_its_own_accounts_twilio(fake, bravo):
    default = Account.objects.get_or_create(slug="default", defaults={"name": "Default"})[0]
    mine = TrackingNumberFactory(number="+14155550131", carrier="twilio", carrier_id="PN" + "3" * 32, account=bravo,
                                 campaign=CampaignFactory(account=bravo))
    theirs = TrackingNumberFactory(number="+14155550132", carrier="twilio", carrier_id="PN" + "4" * 32, account=default,
                                   campaign=CampaignFactory(account=default))
    fake.answers += [(200, {"sid": mine.carrier_id}), (200, {"sid": theirs.carrier_id})]
    assert numbers_configure(numbers=[mine, theirs]) == []
    assert [(r["uri"], r["auth"]) for r in fake.requests] == [
        (f"{SUB_API}/IncomingPhoneNumbers/{mine.carrier_id}.json", (SUB_SID, SUB_TOKEN)),
        (f"{INSTALL_API}/IncomingPhoneNumbers/{theirs.carrier_id}.json", (INSTALL_SID, INSTALL_TOKEN)),
    ]


def test_a_quarantined_number_is_released_in_its_accounts_subaccount(fake, bravo):
    tn = TrackingNumberFactory(number="+14155550141", carrier="twilio", carrier_id="PN" + "5" * 32, account=bravo,
                               campaign=CampaignFactory(account=bravo), status=NumberStatus.QUARANTINED,
                               quarantined_until=timezone.now() - timedelta(hours=1))
    fake.answers.append((204, ""))
    report = numbers_release_quarantined()
    assert report.released == [tn.number]
    assert [(r["method"], r["uri"], r["auth"]) for r in fake.requests] == [
        ("DELETE", f"{SUB_API}/IncomingPhoneNumbers/{tn.carrier_id}.json", (SUB_SID, SUB_TOKEN))]


def test_a_text_from_an_accounts_number_is_sent_through_its_subaccount(fake, bravo):
    TrackingNumberFactory(number="+14155550151", account=bravo, campaign=CampaignFactory(account=bravo))
    fake.answers.append((201, {"sid": "SM" + "6" * 32, "status": "queued"}))
    text_send(to="+13035550100", from_number="+14155550151", body="Hello", purpose=TextPurpose.REPLY)
    assert [(r["uri"], r["auth"]) for r in fake.requests] == [(f"{SUB_API}/Messages.json", (SUB_SID, SUB_TOKEN))]
    assert fake.requests[0]["data"]["From"] == "+14155550151"


def test_a_queue_dial_for_an_accounts_caller_is_placed_from_its_subaccount(fake, bravo):
    fake.answers.append((201, {"sid": "CA" + "7" * 32, "status": "queued"}))
    _carrier_dial(1, account_id=bravo.pk, to="+13035550101", caller_id="+14155550161", twiml_text="<Response/>",
                  status_url="https://calls.example.com/voice/attempt-status?attempt=1", timeout=20)
    assert [(r["uri"], r["auth"]) for r in fake.requests] == [(f"{SUB_API}/Calls.json", (SUB_SID, SUB_TOKEN))]


def test_a_recording_is_read_with_the_credentials_of_the_twilio_account_its_url_names(fake, bravo):
    call = Call(account_id=bravo.pk, recording_url=f"{SUB_API}/Recordings/RE{'a' * 32}")
    assert recording_carrier(call).account_sid == SUB_SID
    # Made in the install's account before the account got its subaccount: still read there.
    older = Call(account_id=bravo.pk, recording_url=f"{INSTALL_API}/Recordings/RE{'a' * 32}")
    assert recording_carrier(older).account_sid == INSTALL_SID


def test_get_carrier_without_an_account_or_with_the_local_carrier_ignores_subaccounts(fake, bravo, settings):
    assert get_carrier().account_sid == INSTALL_SID
    assert get_carrier(account_id=bravo.pk).account_sid == SUB_SID
    settings.CALLTRACK_CARRIER = "local"
    assert get_carrier(account_id=bravo.pk).name == "local"
