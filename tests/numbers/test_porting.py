from __future__ import annotations

import io

import pytest
import time_machine
from django.core.management import CommandError, call_command
from django.test import override_settings

from calltrack.numbers.models import LocalCarrierNumber, NumberKind, NumberStatus, PortRequest, PortStatus, TrackingNumber
from calltrack.numbers.providers.local import LocalCarrier
from calltrack.numbers.services import NumberError
from calltrack.numbers.services.porting import port_in_create, port_out_start, port_requests_sync
from tests.numbers.factories import NumberPoolFactory, TrackingNumberFactory
from tests.tracking.factories import CampaignFactory, SourceFactory

pytestmark = pytest.mark.django_db


def run(*args):
    out, err = io.StringIO(), io.StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue()


def test_port_in_command_follows_the_request_to_active_pool_numbers(tmp_path):
    pool = NumberPoolFactory(key="main")
    path = tmp_path / "port.csv"
    path.write_text("number\n+14155550142\n(415) 555-0143\n")
    with override_settings(CALLTRACK_LOCAL_PORT_SECONDS=3600), time_machine.travel("2026-03-01 09:00Z", tick=False):
        out = run("port_in", str(path), "--loa-name", "Jane Doe", "--loa-address", "1 Main St, Springfield", "--pool", "main")
        assert "submitted (carrier request LP" in out
        numbers = TrackingNumber.objects.filter(pool=pool)
        assert {n.status for n in numbers} == {NumberStatus.PORTING_IN}
        assert not TrackingNumber.objects.routable().exists()
        assert port_requests_sync()["waiting"] == 1
    with override_settings(CALLTRACK_LOCAL_PORT_SECONDS=3600), time_machine.travel("2026-03-01 10:01Z", tick=False):
        assert port_requests_sync()["completed"] == 1
    request = PortRequest.objects.get()
    assert request.status == PortStatus.COMPLETED and request.completed_at
    assert {(n.status, n.kind) for n in numbers.all()} == {(NumberStatus.ACTIVE, NumberKind.POOL)}
    assert LocalCarrierNumber.objects.get(number="+14155550143").voice_url.endswith("/voice/incoming")
    events = list(TrackingNumber.objects.get(number="+14155550142").events.values_list("to_status", flat=True))
    assert events == ["active", "porting_in"]
    assert port_requests_sync() == {"submitted": 0, "completed": 0, "rejected": 0, "waiting": 0}


def test_a_rejected_port_in_releases_its_numbers():
    campaign = CampaignFactory()
    spare = LocalCarrier().search(area_code="415", limit=1)[0].number  # unassigned inventory: rejected
    request = port_in_create(numbers=[spare], loa_name="Jane", loa_address="1 Main St", campaign=campaign)
    port_requests_sync()
    request.refresh_from_db()
    assert request.status == PortStatus.REJECTED and "Not in service" in request.rejection_reason
    assert TrackingNumber.objects.get(number=spare).status == NumberStatus.RELEASED


def test_port_in_refuses_bad_input_before_writing(tmp_path):
    campaign = CampaignFactory(campaign_id="c")
    TrackingNumberFactory(number="+14155550150")
    path = tmp_path / "p.csv"
    path.write_text("number\n+14155550150\n")
    with pytest.raises(CommandError, match="Already our numbers"):
        run("port_in", str(path), "--loa-name", "J", "--loa-address", "A", "--campaign", "c")
    path.write_text("number\n+14155550151\nxyz\n+14155550151\n")
    with pytest.raises(NumberError) as exc:
        port_in_create(numbers=["+14155550151", "xyz", "+14155550151"], loa_name="J", loa_address="A", campaign=campaign)
    assert exc.value.problems == ["number 2: 'xyz' is not a valid phone number: it is not a number.", "number 3: +14155550151 is listed twice"]
    with pytest.raises(NumberError, match="LOA name and address"):
        port_in_create(numbers=["+14155550152"], loa_name=" ", loa_address="A", campaign=campaign)
    with pytest.raises(NumberError, match="Say where"):
        port_in_create(numbers=["+14155550152"], loa_name="J", loa_address="A")
    assert not PortRequest.objects.exists()


def test_port_in_to_a_capped_source_is_refused():
    source = SourceFactory(static_number_cap=1)
    with pytest.raises(NumberError, match="static number cap"):
        port_in_create(numbers=["+14155550152", "+14155550153"], loa_name="J", loa_address="A", campaign=CampaignFactory(), source=source)


def test_port_out_keeps_routing_until_completion_then_releases():
    pool = NumberPoolFactory(key="main")
    run("numbers_buy", "--count", "1", "--area-code", "415", "--pool", "main")
    tn = TrackingNumber.objects.get(pool=pool)
    with override_settings(CALLTRACK_LOCAL_PORT_SECONDS=600), time_machine.travel("2026-03-01 09:00Z", tick=False):
        out = run("port_out", tn.number, "--to-carrier", "Acme Telecom")
        assert "1 numbers porting out" in out
        tn.refresh_from_db()
        assert tn.status == NumberStatus.PORTING_OUT
        assert TrackingNumber.objects.routable().filter(pk=tn.pk).exists()
        # Idempotent: asking again returns the open request.
        again = port_out_start(numbers=[tn.number], to_carrier="Acme Telecom")
        assert PortRequest.objects.count() == 1 and again.numbers == [tn.number]
        port_requests_sync()
        tn.refresh_from_db()
        assert tn.status == NumberStatus.PORTING_OUT
    with override_settings(CALLTRACK_LOCAL_PORT_SECONDS=600), time_machine.travel("2026-03-01 09:11Z", tick=False):
        port_requests_sync()
    tn.refresh_from_db()
    assert tn.status == NumberStatus.RELEASED and tn.pool is None
    assert PortRequest.objects.get().status == PortStatus.COMPLETED
    assert LocalCarrierNumber.objects.get(number=tn.number).state == "ported_out"


def test_port_out_refuses_unknown_numbers_and_needs_a_carrier():
    with pytest.raises(CommandError, match="not one of our tracking numbers"):
        run("port_out", "+14155550160", "--to-carrier", "X")
    tn = TrackingNumberFactory()
    with pytest.raises(CommandError, match="--to-carrier"):
        run("port_out", tn.number, "--to-carrier", " ")
