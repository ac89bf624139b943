"""The "nearest" strategy: the handler closest to the caller rings first (zip coordinates from the zipcodes package)."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from lxml import etree

from calltrack import geodata
from routing import decision as dec
from routing import nearest
from tests.numbers.factories import TrackingNumberFactory
from tests.routing.test_voice_flow import Flow, dialled, handler
from tests.tracking.factories import CampaignFactory, HandlerFactory
from tracking.models import Call


def located(campaign, priority, name, zip_code):
    """A handler of the campaign placed by its zip code (validation fills its coordinates, as the admin and API do)."""
    h = handler(campaign, priority, name=name, location_zip=zip_code)
    h.full_clean()
    h.save()
    return h


def test_zip_codes_and_area_codes_have_coordinates_from_the_shipped_data_set():
    denver, boulder = geodata.zip_point("80202"), geodata.zip_point("80301-1234")
    assert denver == pytest.approx((39.75, -105.0), abs=0.05)
    assert 30 < geodata.distance_km(denver, boulder) < 45
    assert geodata.zip_point("00000") is None and geodata.zip_point("abc") is None
    assert geodata.distance_km(denver, geodata.area_code_point("303")) < 100


def test_nearest_order_puts_located_handlers_by_distance_then_the_rest():
    a = dec.HandlerOption(id=1, name="NYC", number="+12125550100", position=0, latitude=40.75, longitude=-73.99)
    b = dec.HandlerOption(id=2, name="Denver", number="+13035550100", position=1, latitude=39.75, longitude=-105.0)
    c = dec.HandlerOption(id=3, name="Nowhere", number="+13125550100", position=2)
    ordered, notes = nearest.nearest_order([a, b, c], nearest.CallerPlace(geodata.zip_point("80301"), "zip 80301"))
    assert [o.name for o in ordered] == ["Denver", "NYC", "Nowhere"]
    assert [o.position for o in ordered] == [0, 1, 2]
    assert notes[0].startswith("Denver ") and notes[0].endswith(" km")
    unknown = nearest.caller_place({}, "anonymous")
    assert unknown.point is None and nearest.nearest_order([a, b], unknown) == ([a, b], [])


@pytest.mark.django_db
def test_a_denver_caller_rings_the_denver_handler_first_and_the_timeline_says_why(twilio, assert_valid_twiml):
    campaign = CampaignFactory(routing_strategy="nearest", company_phone="+13035550190")
    located(campaign, 1, "New York", "10001")
    denver = handler(campaign, 2, name="Denver", latitude=39.7526, longitude=-104.9981)
    flow = Flow(twilio, TrackingNumberFactory(campaign=campaign))
    doc = flow.start(FromZip="80301")
    assert_valid_twiml(etree.tostring(doc))
    assert dialled(doc) == [denver.receiving_number.number]
    call = Call.objects.get()
    assert call.decision["strategy"] == "nearest"
    message = call.events.get(kind="routing.nearest").message
    assert message.startswith("caller at zip 80301: Denver ") and "New York" in message


@pytest.mark.django_db
def test_the_callers_area_code_places_them_when_twilio_gives_no_zip(twilio):
    campaign = CampaignFactory(routing_strategy="nearest")
    located(campaign, 1, "Denver", "80202")
    nyc = located(campaign, 2, "New York", "10001")
    flow = Flow(twilio, TrackingNumberFactory(campaign=campaign))
    assert dialled(flow.start(From="+12125550123")) == [nyc.receiving_number.number]


@pytest.mark.django_db
def test_an_unknown_caller_place_uses_the_fallback_strategy(twilio):
    campaign = CampaignFactory(routing_strategy="nearest", nearest_fallback="priority_weight")
    first = located(campaign, 1, "Denver", "80202")
    located(campaign, 2, "Far", "10001")
    flow = Flow(twilio, TrackingNumberFactory(campaign=campaign))
    assert dialled(flow.start(From="anonymous")) == [first.receiving_number.number]
    call = Call.objects.get()
    assert call.decision["strategy"] == "priority_weight"
    assert "the caller's place is unknown: ordered by priority, then weight" == call.events.get(kind="routing.nearest").message


@pytest.mark.django_db
def test_a_handlers_location_is_checked_and_filled_from_its_zip():
    h = HandlerFactory(location_zip="80202")
    h.full_clean()
    assert (round(h.latitude, 2), round(h.longitude, 2)) == (39.75, -105.0)
    bad = HandlerFactory.build(receiving_number=h.receiving_number, location_zip="99999", latitude=float("nan"), longitude=1.0)
    with pytest.raises(ValidationError) as exc:
        bad.full_clean()
    assert "location_zip" in exc.value.message_dict and "latitude" in exc.value.message_dict


def _nearest_campaign_with_a_moved_handler():
    """Chicago and a handler placed at 80202 (Denver, coordinates from the zip) who is about to move to New York."""
    campaign = CampaignFactory(routing_strategy="nearest", company_phone="+13035550190")
    located(campaign, 1, "Chicago", "60601")
    moving = located(campaign, 2, "New York", "80202")
    return campaign, moving


def _brooklyn_call_dials(twilio, campaign, sid):
    return dialled(Flow(twilio, TrackingNumberFactory(campaign=campaign), sid=sid).start(FromZip="11201"))


@pytest.mark.django_db
def test_a_handler_moved_to_another_zip_through_the_api_is_placed_at_the_new_zip(twilio, admin_client, assert_valid_twiml):
    campaign, moving = _nearest_campaign_with_a_moved_handler()
    response = admin_client.patch(f"/api/v1/handlers/{moving.pk}/", {"location_zip": "10001"}, content_type="application/json")
    assert response.status_code == 200, response.content
    assert (response.json()["latitude"], response.json()["longitude"]) == pytest.approx(geodata.zip_point("10001"))
    assert _brooklyn_call_dials(twilio, campaign, "CA1") == [moving.receiving_number.number]
    # Coordinates typed with the zip stay as typed; a later zip change keeps typed coordinates too.
    typed = {"location_zip": "60601", "latitude": 40.7, "longitude": -74.0}
    assert admin_client.patch(f"/api/v1/handlers/{moving.pk}/", typed, content_type="application/json").status_code == 200
    assert admin_client.patch(f"/api/v1/handlers/{moving.pk}/", {"location_zip": "80202"}, content_type="application/json").status_code == 200
    moving.refresh_from_db()
    assert (moving.location_zip, moving.latitude, moving.longitude) == ("80202", 40.7, -74.0)
    # An unknown zip is refused (400), never a 500, and changes nothing.
    bad = admin_client.patch(f"/api/v1/handlers/{moving.pk}/", {"location_zip": "00000"}, content_type="application/json")
    assert bad.status_code == 400 and "location_zip" in bad.json()


@pytest.mark.django_db
def test_a_handler_moved_to_another_zip_in_the_admin_is_placed_at_the_new_zip(twilio, admin_client):
    from django.urls import reverse
    from lxml import html

    campaign, moving = _nearest_campaign_with_a_moved_handler()
    url = reverse("admin:tracking_handler_change", args=[moving.pk])
    data = dict(html.fromstring(admin_client.get(url).content).forms[-1].form_values())
    data["location_zip"] = "10001"  # the coordinates' boxes still show Denver's, untouched
    response = admin_client.post(url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    moving.refresh_from_db()
    assert (moving.latitude, moving.longitude) == pytest.approx(geodata.zip_point("10001"))
    assert _brooklyn_call_dials(twilio, campaign, "CA2") == [moving.receiving_number.number]
    # Clearing the zip clears the coordinates that came from it.
    data = dict(html.fromstring(admin_client.get(url).content).forms[-1].form_values())
    data["location_zip"] = ""
    assert admin_client.post(url, data).status_code == 302
    moving.refresh_from_db()
    assert (moving.latitude, moving.longitude) == (None, None)
