"""Who sees what: staff by model permissions, collaborators only their own rows, anonymous nothing."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from tests.api.conftest import grant, token_client
from tests.tracking.factories import UserFactory

LISTS = ["sources", "handlers", "campaigns", "calls", "receiving-numbers", "tracking-numbers", "pools", "sessions"]


def ids(response) -> set[int]:
    assert response.status_code == 200, response.content
    return {row["id"] for row in response.json()["results"]}


def every_url(world) -> list[tuple[str, str]]:
    """(method, url) for every endpoint, with ids of existing objects."""
    pool = world.pool_mine.pk
    urls = [("get", f"/api/v1/{name}/") for name in LISTS]
    urls += [
        ("get", f"/api/v1/sources/{world.source.pk}/"),
        ("get", f"/api/v1/handlers/{world.handler.pk}/"),
        ("get", f"/api/v1/campaigns/{world.campaign.pk}/"),
        ("get", f"/api/v1/calls/{world.call_mine.pk}/"),
        ("get", f"/api/v1/receiving-numbers/{world.handler.receiving_number_id}/"),
        ("get", f"/api/v1/tracking-numbers/{world.static_mine.pk}/"),
        ("get", f"/api/v1/pools/{pool}/"),
        ("get", f"/api/v1/pools/{pool}/numbers/"),
        ("get", f"/api/v1/pools/{pool}/stats/"),
        ("get", f"/api/v1/sessions/{world.session_mine.pk}/"),
        ("post", "/api/v1/sources/"),
        ("patch", f"/api/v1/handlers/{world.handler.pk}/"),
        ("delete", f"/api/v1/campaigns/{world.campaign.pk}/"),
        ("post", f"/api/v1/pools/{pool}/numbers/add/"),
        ("post", f"/api/v1/pools/{pool}/numbers/remove/"),
    ]
    return urls


def test_anonymous_gets_401_on_every_endpoint(world):
    client = APIClient()
    for method, url in every_url(world):
        response = getattr(client, method)(url, {}, format="json")
        assert response.status_code == 401, (method, url, response.status_code)
        assert response["WWW-Authenticate"].startswith("Token")


def test_a_wrong_token_gets_401(world):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")
    assert client.get("/api/v1/calls/").status_code == 401


def test_staff_sees_every_row_of_every_resource(staff, world):
    assert ids(staff.get("/api/v1/calls/")) == {world.call_mine.pk, world.call_other.pk, world.call_source_only.pk}
    assert ids(staff.get("/api/v1/sources/")) == {world.source.pk, world.other_source.pk}
    assert ids(staff.get("/api/v1/handlers/")) == {world.handler.pk, world.other_handler.pk}
    assert ids(staff.get("/api/v1/campaigns/")) == {world.campaign.pk}
    assert len(ids(staff.get("/api/v1/receiving-numbers/"))) == 2
    assert ids(staff.get("/api/v1/tracking-numbers/")) == {
        world.static_mine.pk, world.static_other.pk, world.pool_number_mine.pk, world.pool_number_other.pk,
    }
    assert ids(staff.get("/api/v1/pools/")) == {world.pool_mine.pk, world.pool_other.pk}
    assert ids(staff.get("/api/v1/sessions/")) == {world.session_mine.pk, world.session_other.pk}
    for method, url in every_url(world):
        if method == "get":
            assert staff.get(url).status_code == 200, url


def test_staff_gets_404_for_an_id_that_does_not_exist(staff, world):
    for name in LISTS:
        assert staff.get(f"/api/v1/{name}/999999/").status_code == 404, name
    assert staff.get("/api/v1/calls/99999999999999999999999/").status_code == 404


def test_staff_sees_every_field_of_a_call(staff, world):
    data = staff.get(f"/api/v1/calls/{world.call_mine.pk}/").json()
    assert data["revenue"] == "30.00" and data["payout"] == "12.00" and data["margin"] == "18.00"
    assert data["campaign"] == world.campaign.pk and data["handler"] == world.handler.pk and data["source"] == world.source.pk
    assert [a["handler"] for a in data["attempts"]] == [world.other_handler.pk, world.handler.pk]


def test_source_collaborator_sees_only_its_sources_calls_numbers_pools_and_sessions(source_collaborator, world):
    assert ids(source_collaborator.get("/api/v1/calls/")) == {world.call_mine.pk, world.call_source_only.pk}
    assert ids(source_collaborator.get("/api/v1/tracking-numbers/")) == {world.static_mine.pk, world.pool_number_mine.pk}
    assert ids(source_collaborator.get("/api/v1/pools/")) == {world.pool_mine.pk}
    assert ids(source_collaborator.get("/api/v1/sessions/")) == {world.session_mine.pk}
    assert ids(source_collaborator.get(f"/api/v1/pools/{world.pool_mine.pk}/numbers/")) == {world.pool_number_mine.pk}
    stats = source_collaborator.get(f"/api/v1/pools/{world.pool_mine.pk}/stats/").json()
    assert stats == {"size": 1, "in_use": 1, "available": 0, "live_sessions": 1, "overflows": 0}


def test_source_collaborator_cannot_see_campaigns_sources_handlers_or_receiving_numbers(source_collaborator, world):
    for url in [
        "/api/v1/campaigns/", f"/api/v1/campaigns/{world.campaign.pk}/", "/api/v1/sources/",
        f"/api/v1/sources/{world.source.pk}/", "/api/v1/handlers/", f"/api/v1/handlers/{world.handler.pk}/",
        "/api/v1/receiving-numbers/",
    ]:
        assert source_collaborator.get(url).status_code == 403, url


def test_source_collaborator_gets_404_for_another_sources_objects(source_collaborator, world):
    for url in [
        f"/api/v1/calls/{world.call_other.pk}/",
        f"/api/v1/tracking-numbers/{world.static_other.pk}/",
        f"/api/v1/tracking-numbers/{world.pool_number_other.pk}/",
        f"/api/v1/pools/{world.pool_other.pk}/",
        f"/api/v1/pools/{world.pool_other.pk}/stats/",
        f"/api/v1/pools/{world.pool_other.pk}/numbers/",
        f"/api/v1/sessions/{world.session_other.pk}/",
    ]:
        response = source_collaborator.get(url)
        assert response.status_code == 404, url
        # Same answer as for an id that does not exist at all.
        assert response.json() == source_collaborator.get(url.replace(url.split("/")[4], "999999", 1)).json()


def test_source_collaborator_cannot_write_even_its_own_rows(source_collaborator, world):
    assert source_collaborator.post("/api/v1/pools/", {"name": "x", "campaign": world.campaign.pk}, format="json").status_code == 403
    assert source_collaborator.patch(f"/api/v1/tracking-numbers/{world.static_mine.pk}/", {"label": "x"}, format="json").status_code == 403
    response = source_collaborator.post(f"/api/v1/pools/{world.pool_mine.pk}/numbers/remove/", {"numbers": [world.pool_number_mine.number]}, format="json")
    assert response.status_code == 403
    assert source_collaborator.delete(f"/api/v1/calls/{world.call_mine.pk}/").status_code in (403, 405)


def test_source_collaborator_does_not_see_the_campaign_handler_revenue_or_legs_of_its_calls(source_collaborator, world):
    data = source_collaborator.get(f"/api/v1/calls/{world.call_mine.pk}/").json()
    assert data["payout"] == "12.00"
    assert data["source"] == world.source.pk
    for hidden in ("campaign", "handler", "revenue", "margin"):
        assert data[hidden] is None, hidden
    assert data["decision"] == {}
    assert data["attempts"] == []
    number = source_collaborator.get(f"/api/v1/tracking-numbers/{world.static_mine.pk}/").json()
    assert number["campaign"] is None and number["number"] == world.static_mine.number
    assert (number["whisper_message"], number["filters"], number["assigned_agent"]) == ("", [], None)
    assert source_collaborator.get(f"/api/v1/pools/{world.pool_mine.pk}/").json()["campaign"] is None


def test_handler_collaborator_sees_only_calls_routed_to_its_handler(handler_collaborator, world):
    assert ids(handler_collaborator.get("/api/v1/calls/")) == {world.call_mine.pk}
    assert handler_collaborator.get(f"/api/v1/calls/{world.call_other.pk}/").status_code == 404
    assert handler_collaborator.get(f"/api/v1/calls/{world.call_source_only.pk}/").status_code == 404
    # Filtering by another handler finds nothing rather than revealing anything.
    assert ids(handler_collaborator.get("/api/v1/calls/", {"handler": world.other_handler.pk})) == set()


def test_handler_collaborator_sees_its_own_legs_and_nothing_that_names_the_source_or_the_visitor(handler_collaborator, world):
    data = handler_collaborator.get(f"/api/v1/calls/{world.call_mine.pk}/").json()
    assert data["revenue"] == "30.00"
    for hidden in ("campaign", "source", "source_public_id", "tracking_number", "payout", "margin", "session"):
        assert data[hidden] is None, hidden
    for blank in ("visitor_id", "landing_page", "referrer", "called_number"):
        assert data[blank] == "", blank
    assert data["marketing_data"] in ({}, None)
    assert "source" not in data["tags"]
    assert data["decision"] == {}
    assert [a["handler"] for a in data["attempts"]] == [world.handler.pk]


def test_handler_collaborator_cannot_see_numbers_pools_sessions_campaigns_sources_or_handlers(handler_collaborator, world):
    for name in ["tracking-numbers", "pools", "sessions", "campaigns", "sources", "handlers", "receiving-numbers"]:
        assert handler_collaborator.get(f"/api/v1/{name}/").status_code == 403, name
    assert handler_collaborator.get(f"/api/v1/handlers/{world.handler.pk}/").status_code == 403
    assert handler_collaborator.get(f"/api/v1/pools/{world.pool_mine.pk}/stats/").status_code == 403


def test_staff_without_model_permissions_is_refused(world):
    client = token_client(UserFactory(username="bare-staff", is_staff=True))
    assert client.get("/api/v1/calls/").status_code == 403
    assert client.get("/api/v1/sources/").status_code == 403


def test_staff_with_view_permission_reads_but_cannot_write(world):
    user = UserFactory(username="viewer", is_staff=True)
    grant(user, "tracking.view_source", "numbers.view_numberpool")
    client = token_client(user)
    assert client.get("/api/v1/sources/").status_code == 200
    assert client.post("/api/v1/sources/", {"name": "New"}, format="json").status_code == 403
    assert client.get("/api/v1/calls/").status_code == 403
    assert client.get(f"/api/v1/pools/{world.pool_mine.pk}/stats/").status_code == 200
    # Listing a pool's numbers also needs the tracking number view permission.
    assert client.get(f"/api/v1/pools/{world.pool_mine.pk}/numbers/").status_code == 403
    response = client.post(f"/api/v1/pools/{world.pool_mine.pk}/numbers/add/", {"numbers": ["+14155550100"]}, format="json")
    assert response.status_code == 403


def test_a_user_who_is_neither_staff_nor_collaborator_is_refused_whatever_its_permissions(world):
    user = UserFactory(username="outsider")
    grant(user, "all")
    assert token_client(user).get("/api/v1/calls/").status_code == 403


def test_session_login_works_for_the_browsable_api(staff_user, world):
    client = APIClient()
    client.force_login(staff_user)
    response = client.get("/api/v1/calls/", HTTP_ACCEPT="text/html")
    assert response.status_code == 200
    assert b"Call List" in response.content or b"calls" in response.content.lower()


@pytest.mark.parametrize("name", LISTS)
def test_superuser_reads_every_list(name, world):
    client = token_client(UserFactory(username="root", is_staff=True, is_superuser=True))
    assert client.get(f"/api/v1/{name}/").status_code == 200


@pytest.mark.parametrize("who", ["source_collaborator", "handler_collaborator"])
def test_collaborators_cannot_write_anywhere(who, request, world):
    client = request.getfixturevalue(who)
    for method, url in every_url(world):
        if method == "get":
            continue
        assert getattr(client, method)(url, {}, format="json").status_code == 403, (who, method, url)
    for name in LISTS:
        assert client.post(f"/api/v1/{name}/", {}, format="json").status_code in (403, 405), name


def test_collaborators_marked_staff_stay_scoped_on_the_conversion_endpoints(source_collaborator, world):
    # source_collaborator is_staff (to log in to the admin): it must still see only its own calls.
    totals = source_collaborator.get("/api/v1/conversions/totals", {"by": "source"}).json()
    assert {row["id"] for row in totals} == {world.source.pk}
    assert sum(row["calls"] for row in totals) == 2
    response = source_collaborator.post(f"/api/v1/calls/{world.call_mine.pk}/conversion")
    assert response.status_code == 404


def test_the_conversion_endpoints_need_the_call_permissions_for_staff(world):
    user = UserFactory(username="no-call-perms", is_staff=True)
    client = token_client(user)
    assert client.post(f"/api/v1/calls/{world.call_mine.pk}/conversion").status_code == 403
    assert client.get("/api/v1/conversions/totals", {"by": "source"}).status_code == 403
    grant(user, "tracking.view_call")
    assert client.get("/api/v1/conversions/totals", {"by": "source"}).status_code == 200
