"""The Twilio carrier, against fakes: the voice fallback URL on purchase and on update, and call recordings
(streamed with the account's credentials, deleted through the Recordings resource)."""

from __future__ import annotations

from io import StringIO
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from django.core.management import call_command

from calltrack.numbers.providers import CarrierError
from calltrack.numbers.services.lifecycle import BuyTarget, numbers_buy, numbers_configure
from tests.numbers.factories import TrackingNumberFactory
from tests.numbers.test_twilio_carrier import API, SID, carrier, page
from tests.tracking.factories import CampaignFactory

RECORDING = "RE" + "7" * 32


@pytest.fixture(autouse=True)
def _base(settings):
    settings.CALLTRACK_PUBLIC_BASE_URL = "https://calls.example.com"
    settings.CALLTRACK_FALLBACK_URL = True


def _fallback_failsafe(data: dict) -> list[str]:
    parts = urlsplit(data["VoiceFallbackUrl"])
    assert (parts.scheme, parts.netloc, parts.path) == ("https", "calls.example.com", "/voice/fallback")
    return parse_qs(parts.query).get("failsafe", [])


@pytest.mark.django_db
def test_buying_a_number_sets_its_voice_fallback_url_with_the_campaigns_failsafe():
    campaign = CampaignFactory(failsafe_number="+13035550177")
    twilio, fake = carrier(
        (200, page("available_phone_numbers", [{"phone_number": "+14155550123", "region": "CA", "locality": "SF"}])),
        (201, {"sid": "PN" + "1" * 32, "phone_number": "+14155550123", "account_sid": SID}),
    )
    [bought] = numbers_buy(count=1, target=BuyTarget(campaign=campaign), area_code="415", carrier=twilio)
    purchase = fake.requests[1]
    assert (purchase["method"], purchase["uri"]) == ("POST", f"{API}/IncomingPhoneNumbers.json")
    assert purchase["data"]["VoiceUrl"] == "https://calls.example.com/voice/incoming"
    assert purchase["data"]["VoiceFallbackMethod"] == "POST"
    assert _fallback_failsafe(purchase["data"]) == ["+13035550177"]
    assert bought.carrier_id == "PN" + "1" * 32


@pytest.mark.django_db
def test_updating_a_number_sets_its_fallback_url_with_its_own_failsafe_first():
    campaign = CampaignFactory(failsafe_number="+13035550177")
    own = TrackingNumberFactory(campaign=campaign, failsafe_number="+13035550188", carrier="twilio", carrier_id="PN2")
    inherits = TrackingNumberFactory(campaign=campaign, carrier="twilio", carrier_id="PN3")
    twilio, fake = carrier((200, {"sid": "PN2"}), (200, {"sid": "PN3"}))
    assert numbers_configure(numbers=[own, inherits], carrier=twilio) == []
    assert [(r["method"], r["uri"]) for r in fake.requests] == [
        ("POST", f"{API}/IncomingPhoneNumbers/PN2.json"), ("POST", f"{API}/IncomingPhoneNumbers/PN3.json")]
    assert _fallback_failsafe(fake.requests[0]["data"]) == ["+13035550188"]
    assert _fallback_failsafe(fake.requests[1]["data"]) == ["+13035550177"]
    assert fake.requests[0]["data"]["StatusCallback"] == "https://calls.example.com/voice/status"


@pytest.mark.django_db
def test_a_number_without_any_failsafe_gets_the_bare_fallback_url():
    tn = TrackingNumberFactory(campaign=CampaignFactory(), carrier="twilio", carrier_id="PN4")
    twilio, fake = carrier((200, {"sid": "PN4"}))
    numbers_configure(numbers=[tn], carrier=twilio)
    assert fake.requests[0]["data"]["VoiceFallbackUrl"] == "https://calls.example.com/voice/fallback"


@pytest.mark.django_db
def test_the_fallback_url_can_be_switched_off(settings):
    settings.CALLTRACK_FALLBACK_URL = False
    tn = TrackingNumberFactory(campaign=CampaignFactory(failsafe_number="+13035550177"), carrier="twilio", carrier_id="PN5")
    twilio, fake = carrier((200, {"sid": "PN5"}))
    numbers_configure(numbers=[tn], carrier=twilio)
    assert "VoiceFallbackUrl" not in fake.requests[0]["data"]


@pytest.mark.django_db
def test_numbers_configure_command_reconfigures_the_named_numbers_and_refuses_unknown_ones():
    from django.core.management import CommandError

    from calltrack.numbers.models import LocalCarrierNumber, TrackingNumber

    campaign = CampaignFactory()
    call_command("numbers_buy", "--count", "1", "--area-code", "415", "--campaign", str(campaign.pk), stdout=StringIO())
    bought = TrackingNumber.objects.get()
    LocalCarrierNumber.objects.filter(number=bought.number).update(voice_url="")
    out = StringIO()
    call_command("numbers_configure", bought.number, stdout=out)
    assert "1 of 1 numbers configured." in out.getvalue()
    assert LocalCarrierNumber.objects.get(number=bought.number).voice_url == "https://calls.example.com/voice/incoming"
    with pytest.raises(CommandError, match="Not our tracking numbers: \\+14155550000"):
        call_command("numbers_configure", "+14155550000", stdout=StringIO())


# --- recordings ---------------------------------------------------------------------------------------------------


def test_deleting_a_recording_sends_delete_to_the_recordings_resource():
    twilio, fake = carrier((204, ""), (404, {"code": 20404, "message": "The requested resource was not found", "status": 404}))
    twilio.recording_delete(recording_sid=RECORDING)
    twilio.recording_delete(recording_sid=RECORDING)  # already gone: done
    assert [(r["method"], r["uri"]) for r in fake.requests] == [("DELETE", f"{API}/Recordings/{RECORDING}.json")] * 2
    assert fake.requests[0]["auth"] == (SID, "secret")


def test_a_refused_recording_delete_is_a_carrier_error():
    twilio, _ = carrier((401, {"code": 20003, "message": "Authenticate", "status": 401}))
    with pytest.raises(CarrierError, match="refused the credentials") as exc:
        twilio.recording_delete(recording_sid=RECORDING)
    assert exc.value.code == "auth"


def test_a_bad_recording_sid_is_refused_before_any_request():
    twilio, fake = carrier()
    with pytest.raises(CarrierError, match="not a Twilio recording SID"):
        twilio.recording_delete(recording_sid="../Calls/CA1")
    assert fake.requests == []


class FakeMedia:
    """A requests.Session that answers Twilio's media URL and records what it was asked."""

    def __init__(self, status: int, body: bytes = b"") -> None:
        self.status, self.body, self.calls = status, body, []
        self.closed = False

    def get(self, url, **kwargs):
        self.calls.append((url, kwargs))
        response = requests.Response()
        response.status_code = self.status
        response.headers["Content-Length"] = str(len(self.body))
        response.raw = _Raw(self.body, self)
        return response


class _Raw:
    def __init__(self, body: bytes, owner: FakeMedia) -> None:
        self.body, self.owner = body, owner

    def stream(self, size, decode_content=True):
        for i in range(0, len(self.body), size):
            yield self.body[i:i + size]

    def close(self) -> None:
        self.owner.closed = True

    def release_conn(self) -> None:
        self.owner.closed = True


def test_recording_audio_is_streamed_from_twilio_with_the_account_credentials():
    from calltrack.numbers.providers.twilio import TwilioCarrier

    media = FakeMedia(200, b"ID3" + b"x" * 100_000)
    twilio = TwilioCarrier(account_sid=SID, auth_token="secret", media_session=media)
    audio = twilio.recording_open(recording_sid=RECORDING)
    assert audio.content_type == "audio/mpeg" and audio.size == 100_003
    assert b"".join(audio.chunks) == b"ID3" + b"x" * 100_000
    audio.chunks.close()
    [(url, kwargs)] = media.calls
    assert url == f"{API}/Recordings/{RECORDING}.mp3"
    assert kwargs["auth"] == (SID, "secret") and kwargs["stream"] is True
    assert media.closed


def test_a_recording_twilio_no_longer_has_is_not_found():
    from calltrack.numbers.providers.twilio import TwilioCarrier

    twilio = TwilioCarrier(account_sid=SID, auth_token="secret", media_session=FakeMedia(404))
    with pytest.raises(CarrierError) as exc:
        twilio.recording_open(recording_sid=RECORDING)
    assert exc.value.code == "not_found"


# --- a changed fail-safe reaches Twilio -----------------------------------------------------------------------------


@pytest.fixture
def queued(settings, monkeypatch):
    settings.CALLTRACK_CARRIER = "twilio"
    calls: list[tuple] = []
    monkeypatch.setattr("django_q.tasks.async_task", lambda *args, **kwargs: calls.append(args))
    monkeypatch.setattr("tracking.services.campaigns.async_task", lambda *args, **kwargs: calls.append(args))
    return calls


@pytest.mark.django_db
def test_changing_a_numbers_failsafe_queues_the_update_of_its_fallback_url(queued, django_capture_on_commit_callbacks):
    from calltrack.numbers.services.lifecycle import FALLBACK_REFRESH_TASK, numbers_fallback_refresh
    from calltrack.numbers.services.records import tracking_number_update

    tn = TrackingNumberFactory(campaign=CampaignFactory(), carrier="twilio", carrier_id="PN6")
    with django_capture_on_commit_callbacks(execute=True):
        tracking_number_update(tracking_number=tn, fields={"label": "renamed"})
    assert queued == []
    with django_capture_on_commit_callbacks(execute=True):
        tracking_number_update(tracking_number=tn, fields={"failsafe_number": "+13035550166"})
    assert queued == [(FALLBACK_REFRESH_TASK, [tn.pk], None)]
    twilio, fake = carrier((200, {"sid": "PN6"}))
    assert numbers_fallback_refresh(number_ids=[tn.pk], carrier=twilio) == []
    assert _fallback_failsafe(fake.requests[0]["data"]) == ["+13035550166"]


@pytest.mark.django_db
def test_changing_a_campaigns_failsafe_updates_the_fallback_url_of_its_twilio_numbers(queued, django_capture_on_commit_callbacks):
    from calltrack.numbers.models import NumberKind
    from calltrack.numbers.services.lifecycle import FALLBACK_REFRESH_TASK, numbers_fallback_refresh
    from tests.numbers.factories import NumberPoolFactory
    from tracking.services.campaigns import campaign_update

    campaign = CampaignFactory(failsafe_number="+13035550177")
    static = TrackingNumberFactory(campaign=campaign, carrier="twilio", carrier_id="PN7")
    pooled = TrackingNumberFactory(kind=NumberKind.POOL, campaign=campaign, pool=NumberPoolFactory(campaign=campaign), carrier="twilio",
                                   carrier_id="PN8")
    TrackingNumberFactory(campaign=campaign, carrier="local", carrier_id="LN1")  # not Twilio's
    TrackingNumberFactory(campaign=CampaignFactory(), carrier="twilio", carrier_id="PN9")  # another campaign
    with django_capture_on_commit_callbacks(execute=True):
        campaign_update(campaign=campaign, fields={"failsafe_number": "+13035550155"})
    assert queued == [(FALLBACK_REFRESH_TASK, [], campaign.pk)]
    twilio, fake = carrier((200, {"sid": "PN7"}), (200, {"sid": "PN8"}))
    numbers_fallback_refresh(campaign_id=campaign.pk, carrier=twilio)
    assert [r["uri"] for r in fake.requests] == [f"{API}/IncomingPhoneNumbers/{sid}.json" for sid in (static.carrier_id, pooled.carrier_id)]
    assert all(_fallback_failsafe(r["data"]) == ["+13035550155"] for r in fake.requests)
