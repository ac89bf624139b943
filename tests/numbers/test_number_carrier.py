"""Every number records the carrier that holds it (import, API), and is released at that carrier, never "locally"
when a real carrier holds it. Twilio is played by a fake HTTP client: no internet."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command

from calltrack.numbers.models import NumberStatus, TrackingNumber
from calltrack.numbers.providers.twilio import TwilioCarrier
from calltrack.numbers.services.importing import NumberImportError, numbers_import
from calltrack.numbers.services.lifecycle import numbers_release_quarantined
from tests.numbers.factories import TrackingNumberFactory
from tests.numbers.test_twilio_carrier import API, SID, FakeTwilio, page
from tests.tracking.factories import CampaignFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def twilio(settings, monkeypatch):
    """CALLTRACK_CARRIER=twilio, the SDK talking to a fake Twilio whose answers the test queues."""
    settings.CALLTRACK_CARRIER = "twilio"
    settings.TWILIO_ACCOUNT_SID, settings.TWILIO_AUTH_TOKEN = SID, "secret"
    settings.CALLTRACK_PUBLIC_BASE_URL = "https://calls.example.com"
    fake = FakeTwilio()
    made = lambda name=None, account_id=None: TwilioCarrier(account_sid=SID, auth_token="secret", http_client=fake)  # noqa: E731
    monkeypatch.setattr("calltrack.numbers.services.records.get_carrier", made)
    monkeypatch.setattr("calltrack.numbers.services.lifecycle.get_carrier", made)
    return fake


def test_imported_numbers_record_the_configured_carrier_or_their_carrier_column(twilio):
    CampaignFactory(campaign_id="spring")
    numbers_import(file=io.StringIO("number,campaign\n+14152300001,spring\n"))
    numbers_import(file=io.StringIO("number,campaign,carrier,carrier_id\n+14152300002,spring,local,\n+14152300003,spring,,PN3\n"))
    found = {n.number: (n.carrier, n.carrier_id) for n in TrackingNumber.objects.all()}
    assert found == {"+14152300001": ("twilio", ""), "+14152300002": ("local", ""), "+14152300003": ("twilio", "PN3")}
    with pytest.raises(NumberImportError) as exc:
        numbers_import(file=io.StringIO("number,campaign,carrier\n+14152300004,spring,bandwidth\n"))
    assert str(exc.value.import_problems[0]) == "line 2, column 'carrier': 'bandwidth' is not one of: local, twilio"
    # A number recorded under the wrong carrier is corrected by --update with the carrier column.
    numbers_import(file=io.StringIO("number,carrier\n+14152300002,twilio\n"), update=True)
    assert TrackingNumber.objects.get(number="+14152300002").carrier == "twilio"
    assert twilio.requests == []  # importing records; it never calls the carrier


def test_a_number_added_through_the_api_is_connected_at_the_configured_carrier(twilio, admin_client):
    campaign = CampaignFactory()
    twilio.answers += [
        (200, page("incoming_phone_numbers", [{"sid": "PN7", "phone_number": "+14155550177"}])),
        (200, {"sid": "PN7", "phone_number": "+14155550177"}),
    ]
    response = admin_client.post("/api/v1/tracking-numbers/", {"number": "+14155550177", "campaign": campaign.pk},
                                 content_type="application/json")
    assert response.status_code == 201, response.content
    assert response.json()["carrier"] == "twilio" and "provisioning" not in response.json()
    update = twilio.requests[1]
    assert (update["method"], update["uri"]) == ("POST", f"{API}/IncomingPhoneNumbers/PN7.json")
    assert update["data"]["VoiceUrl"] == "https://calls.example.com/voice/incoming"
    # Bought: the carrier's id is kept; the carrier cannot be typed.
    twilio.answers.append((201, {"sid": "PN8", "phone_number": "+14155550178", "account_sid": SID}))
    body = {"number": "+14155550178", "campaign": campaign.pk, "provisioning": "buy", "carrier": "local"}
    response = admin_client.post("/api/v1/tracking-numbers/", body, content_type="application/json")
    assert response.status_code == 201, response.content
    bought = TrackingNumber.objects.get(number="+14155550178")
    assert (bought.carrier, bought.carrier_id) == ("twilio", "PN8")
    assert bought.events.get().reason == "Bought at twilio through the API"


def test_a_number_the_carrier_does_not_have_is_refused_with_its_reason_and_not_recorded(twilio, admin_client):
    twilio.answers.append((200, page("incoming_phone_numbers", [])))
    response = admin_client.post("/api/v1/tracking-numbers/", {"number": "+14155550179", "campaign": CampaignFactory().pk},
                                 content_type="application/json")
    assert response.status_code == 400
    assert "not a number on the Twilio account" in response.json()["number"][0]
    assert not TrackingNumber.objects.exists()
    bad = admin_client.post("/api/v1/tracking-numbers/", {"number": "+14155550179", "provisioning": "steal"},
                            content_type="application/json")
    assert bad.status_code == 400 and "provisioning" in bad.json()


def test_release_refuses_a_number_recorded_as_local_that_a_real_carrier_holds(twilio):
    mislabelled = TrackingNumberFactory(number="+14155550180", carrier="local")
    held = TrackingNumberFactory(number="+14155550181", carrier="twilio", carrier_id="PN81")
    with pytest.raises(CommandError, match="recorded as the local carrier's, which does not hold it, while CALLTRACK_CARRIER is twilio"):
        call_command("numbers_release", mislabelled.number, stdout=io.StringIO())
    mislabelled.refresh_from_db()
    assert mislabelled.status == NumberStatus.ACTIVE
    call_command("numbers_release", held.number, stdout=io.StringIO())
    # A number quarantined before this check is left quarantined too, not "released" without the carrier.
    TrackingNumber.objects.filter(pk=mislabelled.pk).update(status=NumberStatus.QUARANTINED)
    TrackingNumber.objects.update(quarantined_until="2000-01-01T00:00:00Z")
    twilio.answers.append((204, ""))
    report = numbers_release_quarantined()
    assert report.released == [held.number]
    assert [n for n, _ in report.failed] == [mislabelled.number]
    assert [(r["method"], r["uri"]) for r in twilio.requests] == [("DELETE", f"{API}/IncomingPhoneNumbers/PN81.json")]
    mislabelled.refresh_from_db()
    assert mislabelled.status == NumberStatus.QUARANTINED
