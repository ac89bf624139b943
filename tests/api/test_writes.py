"""Writes go through the services: the same validation as the admin, errors naming the field and why."""

from __future__ import annotations

from tests.numbers.factories import ReceivingNumberFactory, TrackingNumberFactory
from tests.tracking.factories import CampaignFactory, HandlerFactory, SourceFactory
from tracking.models import Campaign, CampaignHandler, Handler, IVRMenu, MoneyChange, Source


def test_creating_a_source_derives_its_public_id(staff):
    response = staff.post("/api/v1/sources/", {"name": "Google Ads - Brand"}, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["source_id"] == "google-ads-brand"
    assert Source.objects.get(pk=response.json()["id"]).name == "Google Ads - Brand"


def test_a_wrong_phone_number_names_the_field_and_says_why(staff):
    response = staff.post("/api/v1/receiving-numbers/", {"number": "+1303555", "label": "Denver"}, format="json")
    assert response.status_code == 400
    assert response.json() == {"number": ["'+1303555' is not a valid phone number: too short."]}


def test_a_national_phone_number_is_stored_in_e164(staff):
    response = staff.post("/api/v1/receiving-numbers/", {"number": "(303) 555-0123", "label": "Denver"}, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["number"] == "+13035550123"
    assert response.json()["country"] == "US"


def test_model_clean_errors_come_back_by_field(staff, db):
    other = ReceivingNumberFactory()
    response = staff.post(
        "/api/v1/receiving-numbers/", {"number": "+13035550123", "label": "x", "no_answer_action": "forward"}, format="json"
    )
    assert response.status_code == 400
    assert response.json() == {"no_answer_forward_to": ["Choose the receiving number to forward to."]}
    response = staff.post(
        "/api/v1/receiving-numbers/",
        {"number": "+13035550123", "label": "x", "no_answer_action": "forward", "no_answer_forward_to": other.pk, "extension_digits": "12x"},
        format="json",
    )
    assert response.status_code == 400
    assert "'x'" in response.json()["extension_digits"][0]


def test_a_receiving_number_is_set_to_a_menu_or_the_queue_when_nobody_answers(staff, db):
    menu = IVRMenu.objects.create(campaign=CampaignFactory(), name="Nobody free", prompt="Press 1.")
    body = {"number": "+13035550123", "label": "Front desk", "no_answer_action": "menu"}
    response = staff.post("/api/v1/receiving-numbers/", body, format="json")
    assert response.status_code == 400 and response.json() == {"no_answer_menu": ["Choose the menu the caller hears."]}
    response = staff.post("/api/v1/receiving-numbers/", {**body, "no_answer_menu": menu.pk}, format="json")
    assert response.status_code == 201, response.content
    assert (response.json()["no_answer_action"], response.json()["no_answer_menu"]) == ("menu", menu.pk)
    line = response.json()["id"]
    response = staff.patch(f"/api/v1/receiving-numbers/{line}/", {"no_answer_action": "queue"}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["no_answer_action"] == "queue"


def test_handler_business_hours_and_tag_criteria_are_readable_json_validated_like_the_admin(staff, db):
    line = ReceivingNumberFactory()
    body = {
        "name": "Night desk",
        "receiving_number": line.pk,
        "always_open": False,
        "timezone": "America/Chicago",
        "business_hours": {"mon": ["09:00-12:00", "13:00-17:00"], "fri": ["22:00-02:00+1"]},
        "tag_criteria": [{"key": "caller_state", "op": "one_of", "value": "CA, NV"}],
    }
    response = staff.post("/api/v1/handlers/", body, format="json")
    assert response.status_code == 201, response.content
    data = response.json()
    assert data["business_hours"] == {"mon": ["09:00-12:00", "13:00-17:00"], "fri": ["22:00-02:00+1"]}
    assert data["tag_criteria"] == [{"key": "caller_state", "op": "one_of", "value": ["CA", "NV"]}]
    handler = Handler.objects.get(pk=data["id"])
    assert handler.tag_criteria == [{"key": "caller_state", "op": "one_of", "value": ["CA", "NV"]}]


def test_bad_business_hours_name_the_day_and_the_problem(staff, db):
    line = ReceivingNumberFactory()
    body = {"name": "x", "receiving_number": line.pk, "always_open": False, "business_hours": {"mon": ["17:00-09:00"], "funday": []}}
    response = staff.post("/api/v1/handlers/", body, format="json")
    assert response.status_code == 400
    (message,) = response.json()["business_hours"]
    assert "'funday' is not a day" in message
    assert "Monday: '17:00-09:00' closes before it opens" in message
    assert not Handler.objects.exists()


def test_bad_tag_criteria_and_caps_are_reported_together(staff, db):
    line = ReceivingNumberFactory()
    body = {
        "name": "x", "receiving_number": line.pk, "tag_criteria": [{"key": "state", "op": "like", "value": "CA"}],
        "hourly_cap": 10, "daily_cap": 5, "timezone": "Mars/Olympus",
    }
    errors = staff.post("/api/v1/handlers/", body, format="json").json()
    assert "op 'like' must be one of" in errors["tag_criteria"][0]
    assert errors["hourly_cap"] == ["Cannot be above the daily cap (5)."]
    assert "timezone" in errors


def test_an_unknown_receiving_number_is_a_field_error(staff, db):
    response = staff.post("/api/v1/handlers/", {"name": "x", "receiving_number": 999999}, format="json")
    assert response.status_code == 400
    assert list(response.json()) == ["receiving_number"]


def test_a_campaign_is_created_with_its_handler_list_and_per_campaign_priority_and_weight(staff, db):
    a, b = HandlerFactory(priority=1, weight=1), HandlerFactory(priority=2, weight=5)
    body = {"name": "Spring", "handlers": [{"handler": b.pk, "priority": 1, "weight": 3}, {"handler": a.pk}]}
    response = staff.post("/api/v1/campaigns/", body, format="json")
    assert response.status_code == 201, response.content
    handlers = response.json()["handlers"]
    assert [(h["handler"], h["effective_priority"], h["effective_weight"], h["position"]) for h in handlers] == [
        (b.pk, 1, 3, 0), (a.pk, 1, 1, 1),
    ]
    assert response.json()["campaign_id"] == "spring"


def test_sending_a_campaigns_handlers_replaces_the_list_and_other_fields_keep_it(staff, db):
    campaign = CampaignFactory()
    a, b = HandlerFactory(), HandlerFactory()
    url = f"/api/v1/campaigns/{campaign.pk}/"
    assert staff.patch(url, {"handlers": [{"handler": a.pk}, {"handler": b.pk}]}, format="json").status_code == 200
    assert staff.patch(url, {"name": "Renamed"}, format="json").json()["handlers"][1]["handler"] == b.pk
    response = staff.patch(url, {"handlers": [{"handler": b.pk, "enabled": False}]}, format="json")
    assert response.status_code == 200
    assert list(CampaignHandler.objects.filter(campaign=campaign).values_list("handler_id", "enabled")) == [(b.pk, False)]
    assert Campaign.objects.get(pk=campaign.pk).config_version > 1


def test_a_handler_listed_twice_in_a_campaign_is_refused_and_nothing_changes(staff, db):
    campaign = CampaignFactory(name="Before")
    a = HandlerFactory()
    response = staff.patch(
        f"/api/v1/campaigns/{campaign.pk}/", {"name": "After", "handlers": [{"handler": a.pk}, {"handler": a.pk, "weight": 3}]}, format="json"
    )
    assert response.status_code == 400
    assert response.json() == {"handlers": [f"entry 2: handler '{a}' is listed twice"]}
    response = staff.patch(f"/api/v1/campaigns/{campaign.pk}/", {"handlers": [{"handler": a.pk, "weight": 2000}]}, format="json")
    assert response.json() == {"handlers": {"0": {"weight": ["Ensure this value is less than or equal to 1000."]}}}
    campaign.refresh_from_db()
    assert campaign.name == "Before"
    assert not CampaignHandler.objects.exists()


def test_campaign_clean_rules_apply(staff, db):
    response = staff.post("/api/v1/campaigns/", {"name": "x", "greeting_kind": "say", "greeting_text": " "}, format="json")
    assert response.status_code == 400
    assert response.json() == {"greeting_text": ["Write the text to say, or choose another greeting."]}


def test_deleting_a_receiving_number_a_handler_uses_is_a_409_naming_the_handler(staff, db):
    handler = HandlerFactory(name="Denver desk")
    response = staff.delete(f"/api/v1/receiving-numbers/{handler.receiving_number_id}/")
    assert response.status_code == 409
    assert "Denver desk" in response.json()["detail"]


def test_a_sources_static_number_cap_is_enforced_on_the_api(staff, db):
    source = SourceFactory(static_number_cap=1)
    TrackingNumberFactory(source=source)
    response = staff.post("/api/v1/tracking-numbers/", {"number": "+14155550177", "source": source.pk}, format="json")
    assert response.status_code == 400
    assert "static number cap" in response.json()["source"][0]


def test_tracking_number_pool_and_status_are_read_only(staff, db):
    number = TrackingNumberFactory()
    response = staff.patch(f"/api/v1/tracking-numbers/{number.pk}/", {"status": "released", "label": "Billboard"}, format="json")
    assert response.status_code == 200
    number.refresh_from_db()
    assert (number.status, number.label) == ("active", "Billboard")


def test_a_held_tracking_number_cannot_be_deleted_but_a_released_one_can(staff, db):
    number = TrackingNumberFactory()
    response = staff.delete(f"/api/v1/tracking-numbers/{number.pk}/")
    assert response.status_code == 400
    assert "release it before deleting it" in response.json()["status"][0]
    released = TrackingNumberFactory(status="released")
    assert staff.delete(f"/api/v1/tracking-numbers/{released.pk}/").status_code == 204


def test_static_numbers_cannot_carry_pool_only_settings(staff, db):
    body = {"number": "+14155550188", "kind": "pool", "marketing_data": {"utm_source": "x"}}
    response = staff.post("/api/v1/tracking-numbers/", body, format="json")
    assert response.status_code == 400
    assert "Pool numbers take marketing data" in response.json()["marketing_data"][0]


def test_a_body_that_is_not_json_is_a_400(staff, db):
    response = staff.generic("POST", "/api/v1/sources/", "{not json", content_type="application/json")
    assert response.status_code == 400
    assert "detail" in response.json()


def test_a_pools_campaign_may_not_be_null_although_collaborators_read_it_as_null(staff, world):
    response = staff.patch(f"/api/v1/pools/{world.pool_mine.pk}/", {"campaign": None}, format="json")
    assert response.status_code == 400
    assert response.json() == {"campaign": ["This field may not be null."]}


def test_json_fields_refuse_nul_characters_and_the_wrong_kind(staff, db):
    response = staff.post("/api/v1/tracking-numbers/", {"number": "+14155550189", "marketing_data": {"utm\u0000": "x"}}, format="json")
    assert response.json() == {"marketing_data": ["Text may not contain NUL characters."]}
    response = staff.post("/api/v1/tracking-numbers/", {"number": "+14155550189", "marketing_data": ["x"]}, format="json")
    assert response.json() == {"marketing_data": ["Must be an object."]}


def test_the_handlers_api_reads_and_writes_the_restriction(staff, db):
    line = ReceivingNumberFactory()
    body = {"name": "Buyer", "receiving_number": line.pk, "duplicate_days": 14, "duplicate_on": "converted"}
    response = staff.post("/api/v1/handlers/", body, format="json")
    assert response.status_code == 201, response.content
    assert (response.json()["duplicate_days"], response.json()["duplicate_on"]) == (14, "converted")
    handler_id = response.json()["id"]
    response = staff.patch(f"/api/v1/handlers/{handler_id}/", {"duplicate_days": None, "duplicate_on": None}, format="json")
    assert response.status_code == 200 and response.json()["duplicate_days"] is None
    response = staff.patch(f"/api/v1/handlers/{handler_id}/", {"duplicate_on": "answered"}, format="json")
    assert response.status_code == 400 and "duplicate_days" in response.json()
    change = MoneyChange.objects.of("handler", handler_id).filter(op="update").earliest("id")
    assert (change.before["duplicate_days"], change.after["duplicate_days"]) == (14, None)


def test_a_campaigns_handler_entry_overrides_the_duplicate_restriction_in_that_campaign(staff, db):
    restricted, free = HandlerFactory(duplicate_days=7), HandlerFactory()
    body = {"name": "Solar", "handlers": [{"handler": restricted.pk, "duplicate_days": 0}, {"handler": free.pk, "duplicate_days": 3}]}
    response = staff.post("/api/v1/campaigns/", body, format="json")
    assert response.status_code == 201, response.content
    entries = response.json()["handlers"]
    assert [(e["duplicate_days"], e["effective_duplicate_days"]) for e in entries] == [(0, None), (3, 3)]
    response = staff.patch(f"/api/v1/campaigns/{response.json()['id']}/", {"handlers": [{"handler": restricted.pk}]}, format="json")
    assert [(e["duplicate_days"], e["effective_duplicate_days"]) for e in response.json()["handlers"]] == [(None, 7)]
