"""Collaborators in the admin: their own calls and numbers, read-only; no sources, handlers or campaigns."""

from __future__ import annotations

import pytest
from django.test import Client

from tests.tracking.factories import UserFactory
from tracking.models import Collaborator


@pytest.fixture
def source_login(world) -> Client:
    user = UserFactory(username="admin-src", is_staff=True)
    Collaborator.objects.create(user=user, source=world.source)
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def handler_login(world) -> Client:
    user = UserFactory(username="admin-handler", is_staff=True)
    Collaborator.objects.create(user=user, handler=world.handler)
    client = Client()
    client.force_login(user)
    return client


def test_source_collaborator_lists_only_its_calls_in_the_admin(source_login, world):
    response = source_login.get("/admin/tracking/call/")
    assert response.status_code == 200
    shown = {call.pk for call in response.context["cl"].result_list}
    assert shown == {world.call_mine.pk, world.call_source_only.pk}
    assert "campaign" not in response.context["cl"].list_display
    assert "revenue" not in response.context["cl"].list_display


def test_source_collaborator_opens_its_call_read_only_and_not_a_foreign_one(source_login, world):
    response = source_login.get(f"/admin/tracking/call/{world.call_mine.pk}/change/")
    assert response.status_code == 200
    assert response.context["has_change_permission"] is False
    fields = {f for _, opts in response.context["adminform"].fieldsets for f in opts["fields"]}
    assert "revenue" not in fields and "handler" not in fields and "payout" in fields
    foreign = source_login.get(f"/admin/tracking/call/{world.call_other.pk}/change/")
    assert foreign.status_code == 302  # "doesn't exist" redirect, as for a missing id


def test_source_collaborator_sees_its_numbers_and_sessions_only(source_login, world):
    numbers = source_login.get("/admin/numbers/trackingnumber/")
    assert {n.pk for n in numbers.context["cl"].result_list} == {world.static_mine.pk, world.pool_number_mine.pk}
    sessions = source_login.get("/admin/numbers/numbersession/")
    assert {s.pk for s in sessions.context["cl"].result_list} == {world.session_mine.pk}


def test_collaborators_cannot_open_sources_handlers_or_campaigns_even_with_permissions(source_login, handler_login, world):
    from django.contrib.auth.models import Permission

    for client, username in ((source_login, "admin-src"), (handler_login, "admin-handler")):
        from django.contrib.auth import get_user_model

        user = get_user_model().objects.get(username=username)
        user.user_permissions.add(*Permission.objects.filter(content_type__app_label="tracking"))
        for url in ["/admin/tracking/source/", "/admin/tracking/handler/", "/admin/tracking/campaign/",
                    f"/admin/tracking/campaign/{world.campaign.pk}/change/"]:
            assert client.get(url).status_code == 403, (username, url)


def test_handler_collaborator_lists_only_calls_routed_to_it_and_no_numbers(handler_login, world):
    response = handler_login.get("/admin/tracking/call/")
    assert {c.pk for c in response.context["cl"].result_list} == {world.call_mine.pk}
    assert handler_login.get("/admin/numbers/trackingnumber/").status_code == 403
    index = handler_login.get("/admin/")
    models = {m["object_name"] for app in index.context["app_list"] for m in app["models"]}
    assert models == {"Call", "Alert", "TextMessage"}  # its own calls, the alerts about it, the texts forwarded to it


def test_collaborators_cannot_change_their_calls(source_login, world):
    response = source_login.post(f"/admin/tracking/call/{world.call_mine.pk}/delete/", {"post": "yes"})
    assert response.status_code == 403


def test_staff_admin_is_unchanged(world, staff_user):
    client = Client()
    client.force_login(staff_user)
    response = client.get("/admin/tracking/call/")
    assert len(response.context["cl"].result_list) == 3
    assert client.get("/admin/tracking/campaign/").status_code == 200
