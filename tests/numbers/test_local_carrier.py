from __future__ import annotations

import pytest
import time_machine
from django.test import override_settings

from calltrack import phone
from calltrack.numbers.models import LocalCarrierNumber
from calltrack.numbers.providers import CarrierError, get_carrier
from calltrack.numbers.providers.local import LocalCarrier

pytestmark = pytest.mark.django_db


def test_search_offers_valid_numbers_in_the_area_code_and_is_deterministic():
    first = [n.number for n in LocalCarrier().search(area_code="415", limit=5)]
    assert len(first) == 5
    for number in first:
        assert phone.to_e164(number) == number
        assert phone.area_code(number) == "415"
        assert number[5:8] != "555"
    assert [n.number for n in LocalCarrier().search(area_code="415", limit=5)] == first


def test_toll_free_search_returns_toll_free_numbers():
    found = LocalCarrier().search(number_type="toll_free", limit=4)
    assert len(found) == 4
    assert all(phone.number_type(n.number) == "toll_free" for n in found)


def test_search_near_a_number_uses_its_area_code():
    found = LocalCarrier().search(near_number="+13035550100", limit=2)
    assert {n.area_code for n in found} == {"303"}


def test_contains_filter_finds_vanity_digits():
    found = LocalCarrier().search(area_code="212", contains="77", limit=3)
    assert found and all("77" in n.number[-4:] for n in found)


def test_bad_area_code_is_refused_with_a_reason():
    with pytest.raises(CarrierError, match="3-digit area code"):
        LocalCarrier().search(area_code="41")


def test_buying_takes_the_number_out_of_inventory_and_sets_webhooks():
    carrier = LocalCarrier()
    number = carrier.search(area_code="415", limit=1)[0].number
    bought = carrier.buy(number=number, voice_url="https://x.test/voice/incoming", status_url="https://x.test/voice/status")
    assert bought.carrier_id.startswith("LN")
    row = LocalCarrierNumber.objects.get(number=number)
    assert row.state == "owned" and row.voice_url == "https://x.test/voice/incoming"
    assert number not in [n.number for n in carrier.search(area_code="415", limit=10)]
    with pytest.raises(CarrierError, match="no longer available") as exc:
        carrier.buy(number=number, voice_url="", status_url="")
    assert exc.value.code == "unavailable"
    carrier.release(number=number, carrier_id=bought.carrier_id)
    assert LocalCarrierNumber.objects.get(number=number).state == "available"


def test_port_in_completes_after_the_configured_delay():
    carrier = LocalCarrier()
    with override_settings(CALLTRACK_LOCAL_PORT_SECONDS=3600), time_machine.travel("2026-01-01 12:00Z", tick=False):
        request_id = carrier.port_in_start(numbers=["+14155550142"], loa_name="Jane", loa_address="1 Main St")
        assert carrier.port_in_status(request_id=request_id).status == "submitted"
    with override_settings(CALLTRACK_LOCAL_PORT_SECONDS=3600), time_machine.travel("2026-01-01 13:01Z", tick=False):
        assert carrier.port_in_status(request_id=request_id).status == "completed"
    assert LocalCarrierNumber.objects.get(number="+14155550142").state == "owned"


def test_port_in_of_unassigned_inventory_is_rejected():
    carrier = LocalCarrier()
    spare = carrier.search(area_code="415", limit=1)[0].number
    request_id = carrier.port_in_start(numbers=[spare], loa_name="Jane", loa_address="1 Main St")
    result = carrier.port_in_status(request_id=request_id)
    assert result.status == "rejected" and "Not in service" in result.reason


def test_unknown_carrier_setting_is_a_configuration_error():
    from django.core.exceptions import ImproperlyConfigured

    with pytest.raises(ImproperlyConfigured, match="not a carrier"):
        get_carrier("nope")
