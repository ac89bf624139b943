from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings
from django.utils import timezone

from calltrack.numbers.models import LocalCarrierNumber, NumberEvent, NumberKind, NumberStatus, TrackingNumber
from calltrack.numbers.services import NumberError
from calltrack.numbers.services.lifecycle import (
    BuyTarget,
    numbers_buy,
    numbers_move,
    numbers_quarantine,
    numbers_release_quarantined,
)
from tests.numbers.factories import NumberPoolFactory, NumberSessionFactory, TrackingNumberFactory
from tests.tracking.factories import CampaignFactory, SourceFactory, UserFactory

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    from io import StringIO

    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue()


@override_settings(CALLTRACK_PUBLIC_BASE_URL="https://calls.example.com")
def test_buying_into_a_pool_creates_active_pool_numbers_with_webhooks_and_events():
    pool = NumberPoolFactory(key="main")
    out = run("numbers_buy", "--count", "3", "--area-code", "415", "--pool", "main")
    assert "Bought 3 numbers" in out
    numbers = list(TrackingNumber.objects.filter(pool=pool))
    assert len(numbers) == 3
    assert {n.kind for n in numbers} == {NumberKind.POOL}
    assert {n.area_code for n in numbers} == {"415"}
    assert all(n.campaign == pool.campaign and n.carrier == "local" and n.carrier_id for n in numbers)
    row = LocalCarrierNumber.objects.get(number=numbers[0].number)
    assert row.voice_url == "https://calls.example.com/voice/incoming"
    assert row.status_callback == "https://calls.example.com/voice/status"
    event = NumberEvent.objects.get(tracking_number=numbers[0])
    assert (event.from_status, event.to_status, event.actor_label) == ("", "active", "numbers_buy")


def test_buying_static_numbers_respects_the_source_cap_and_buys_nothing_over_it():
    campaign = CampaignFactory(campaign_id="spring")
    source = SourceFactory(source_id="radio", static_number_cap=2)
    TrackingNumberFactory(source=source, campaign=campaign)
    with pytest.raises(CommandError, match="may hold 2 static numbers .* holds 1 and this would add 2"):
        run("numbers_buy", "--count", "2", "--toll-free", "--campaign", "spring", "--source", "radio")
    assert TrackingNumber.objects.count() == 1
    assert not LocalCarrierNumber.objects.filter(state="owned").exists()
    run("numbers_buy", "--count", "1", "--near", "+13035550100", "--campaign", "spring", "--source", "radio",
        "--marketing-data", '{"utm_source": "radio"}')
    new = TrackingNumber.objects.get(source=source, area_code="303")
    assert new.kind == NumberKind.STATIC and new.marketing_data == {"utm_source": "radio"}


def test_buy_refuses_unclear_targets_with_one_line_reasons():
    NumberPoolFactory(key="main")
    with pytest.raises(CommandError, match="Say where the numbers go"):
        run("numbers_buy", "--count", "1", "--area-code", "415")
    with pytest.raises(CommandError, match="no pool 'nope'"):
        run("numbers_buy", "--count", "1", "--area-code", "415", "--pool", "nope")
    with pytest.raises(CommandError, match="between 1 and"):
        run("numbers_buy", "--count", "0", "--area-code", "415", "--pool", "main")
    with pytest.raises(CommandError, match="--near: '12' is not a valid phone number"):
        run("numbers_buy", "--count", "1", "--near", "12", "--pool", "main")


def test_buy_stops_when_the_carrier_has_too_few_numbers():
    class Short:
        name = "local"

        def search(self, **kwargs):
            return []

    pool = NumberPoolFactory()
    with pytest.raises(NumberError, match="offers only 0 numbers"):
        numbers_buy(count=2, target=BuyTarget(pool=pool), area_code="415", carrier=Short())


def test_release_quarantines_then_the_task_releases_at_the_carrier_after_the_period():
    pool = NumberPoolFactory(key="main")
    run("numbers_buy", "--count", "2", "--area-code", "415", "--pool", "main")
    first, second = TrackingNumber.objects.filter(pool=pool).order_by("number")
    with override_settings(CALLTRACK_QUARANTINE_DAYS=7):
        out = run("numbers_release", first.number, "--reason", "campaign over")
    assert "1 numbers quarantined for 7 days" in out
    first.refresh_from_db()
    assert first.status == NumberStatus.QUARANTINED and first.campaign == pool.campaign
    assert first.quarantined_until - timezone.now() > timedelta(days=6, hours=23)
    # Idempotent: releasing again changes nothing.
    assert "0 numbers quarantined" in run("numbers_release", first.number)
    assert numbers_release_quarantined().released == []
    report = numbers_release_quarantined(now=timezone.now() + timedelta(days=8))
    assert report.released == [first.number]
    first.refresh_from_db()
    assert first.status == NumberStatus.RELEASED and first.pool is None
    assert LocalCarrierNumber.objects.get(number=first.number).state == "available"
    assert list(first.events.values_list("to_status", flat=True)) == ["released", "quarantined", "active"]
    assert numbers_release_quarantined(now=timezone.now() + timedelta(days=9)).released == []


def test_release_from_a_pool_takes_idle_numbers_and_never_a_live_one():
    pool = NumberPoolFactory(key="main")
    busy, idle, other = TrackingNumberFactory.create_batch(3, pool=pool, kind="pool", campaign=pool.campaign)
    NumberSessionFactory(pool=pool, tracking_number=busy)
    other.last_assigned_at = timezone.now()
    other.save()
    run("numbers_release", "--pool", "main", "--count", "1")
    idle.refresh_from_db()
    assert idle.status == NumberStatus.QUARANTINED
    with pytest.raises(CommandError, match="has only 1 idle numbers"):
        run("numbers_release", "--pool", "main", "--count", "2")


def test_release_refuses_unknown_and_porting_numbers():
    tn = TrackingNumberFactory(status=NumberStatus.PORTING_OUT)
    with pytest.raises(CommandError, match="not one of our tracking numbers"):
        run("numbers_release", "+14155550199")
    with pytest.raises(CommandError, match="porting"):
        run("numbers_release", tn.number)
    with pytest.raises(CommandError, match="Give the numbers"):
        run("numbers_release")


def test_a_number_leaving_a_pool_cannot_go_to_another_pool():
    pool_a, pool_b = NumberPoolFactory(), NumberPoolFactory()
    tn = TrackingNumberFactory(pool=pool_a, kind="pool", campaign=pool_a.campaign)
    with pytest.raises(NumberError, match="quarantined first"):
        numbers_move(numbers=[tn], pool=pool_b)
    numbers_quarantine(numbers=[tn], reason="removed")
    tn.refresh_from_db()
    with pytest.raises(NumberError, match="quarantined until"):
        numbers_move(numbers=[tn], pool=pool_b)


def test_moving_a_static_number_into_a_pool_and_back_is_recorded_with_the_actor():
    user = UserFactory()
    pool = NumberPoolFactory()
    campaign = CampaignFactory()
    tn = TrackingNumberFactory(marketing_data={"utm_source": "x"})
    assert numbers_move(numbers=[tn], pool=pool, actor=user) == 1
    tn.refresh_from_db()
    assert (tn.kind, tn.pool, tn.campaign, tn.marketing_data) == (NumberKind.POOL, pool, pool.campaign, {})
    assert numbers_move(numbers=[tn], pool=pool) == 0  # already there
    event = tn.events.get()
    assert event.actor == user and event.changes["pool"] == [None, pool.pk]
    other = TrackingNumberFactory()
    assert numbers_move(numbers=[other], campaign=campaign) == 1


def test_moving_to_a_capped_source_checks_the_cap_for_the_whole_batch():
    source = SourceFactory(static_number_cap=1)
    numbers = TrackingNumberFactory.create_batch(2)
    with pytest.raises(NumberError, match="static number cap"):
        numbers_move(numbers=numbers, campaign=numbers[0].campaign, source=source)
    assert not TrackingNumber.objects.filter(source=source).exists()


def test_a_number_cannot_be_static_and_pooled_or_active_while_porting_out():
    tn = TrackingNumberFactory(status=NumberStatus.PORTING_OUT)
    with pytest.raises(NumberError, match="porting out; only active numbers can move"):
        numbers_move(numbers=[tn], pool=NumberPoolFactory())


def test_a_carrier_failure_half_way_keeps_and_reports_what_was_bought():
    from calltrack.numbers.providers import AvailableNumber, CarrierError, PurchasedNumber

    class Flaky:
        name = "local"
        calls = 0

        def search(self, **kwargs):
            return [AvailableNumber(number=f"+1415230500{i}", number_type="local", area_code="415") for i in range(3)]

        def buy(self, *, number, voice_url, status_url, fallback_url="", sms_url=""):
            self.calls += 1
            if self.calls == 2:
                raise CarrierError("The number is no longer available to buy at Twilio: gone", code="unavailable")
            return PurchasedNumber(number=number, carrier_id="PN1")

    pool = NumberPoolFactory()
    with pytest.raises(NumberError, match="Bought 1 of 2 numbers; then the carrier refused: The number is no longer available"):
        numbers_buy(count=2, target=BuyTarget(pool=pool), area_code="415", carrier=Flaky())
    assert list(TrackingNumber.objects.filter(pool=pool).values_list("number", flat=True)) == ["+14152305000"]
    assert NumberEvent.objects.filter(tracking_number__pool=pool).count() == 1


@override_settings(CALLTRACK_CARRIER="twilio", TWILIO_ACCOUNT_SID="", TWILIO_AUTH_TOKEN="")
def test_a_carrier_without_credentials_fails_with_one_line():
    NumberPoolFactory(key="main")
    with pytest.raises(CommandError, match="The carrier refused: The twilio carrier needs TWILIO_ACCOUNT_SID"):
        run("numbers_buy", "--count", "1", "--area-code", "415", "--pool", "main")
