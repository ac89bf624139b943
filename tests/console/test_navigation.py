"""The sidebar: the operator's order, framework tables last, each item only for who may open it, and the
operator's words (Publisher/Buyer under the performance nomenclature)."""

from __future__ import annotations

import pytest
from django.test import Client, RequestFactory

from calltrack import nomenclature
from calltrack.admin_nav import sidebar_navigation
from tests.tracking.factories import SourceFactory, UserFactory
from tracking.models import Collaborator

pytestmark = pytest.mark.django_db

OPERATOR_ORDER = ["Dashboard", "Calls", "Texts", "Campaigns", "Sources", "Handlers", "Tracking numbers", "Number pools",
                  "Receiving numbers", "Webhooks"]


def _titles(user) -> list[list[str]]:
    request = RequestFactory().get("/admin/")
    request.user = user
    return [[item["title"] for item in group["items"]] for group in sidebar_navigation(request)]


def test_the_sidebar_puts_the_operators_tables_first_and_the_framework_last(admin_user):
    main, more, framework = _titles(admin_user)
    assert main == [*OPERATOR_ORDER, "Usage"]  # the account's usage for rebilling after the operator's tables
    assert "Webhook deliveries" in more and "Users" not in more
    assert {"Users", "Groups", "Tokens"} <= set(framework) and "Calls" not in framework


def test_the_admin_index_shows_the_sidebar_in_that_order(admin_client):
    page = admin_client.get("/admin/").content.decode()
    positions = [page.index(f">{title}<") if f">{title}<" in page else page.index(title) for title in OPERATOR_ORDER[1:]]
    assert positions == sorted(positions)


def test_a_source_collaborator_sees_only_its_calls_and_numbers(client: Client):
    user = UserFactory(username="publisher", is_staff=True)
    Collaborator.objects.create(user=user, source=SourceFactory())
    titles = [title for group in _titles(user) for title in group]
    assert "Calls" in titles and "Tracking numbers" in titles
    for hidden in ("Campaigns", "Sources", "Handlers", "Webhooks", "Users", "Receiving numbers"):
        assert hidden not in titles


def test_the_performance_nomenclature_says_publishers_and_buyers(admin_user, settings):
    settings.CALLTRACK_NOMENCLATURE = "performance"
    settings.LOCALE_PATHS = nomenclature.locale_paths("performance")
    main = _titles(admin_user)[0]
    assert main[4:6] == ["Publishers", "Buyers"]


def test_the_sidebar_says_sources_and_handlers_again_when_the_setting_does(admin_user, settings):
    settings.CALLTRACK_NOMENCLATURE = "performance"
    settings.LOCALE_PATHS = nomenclature.locale_paths("performance")
    assert _titles(admin_user)[0][4:6] == ["Publishers", "Buyers"]
    settings.CALLTRACK_NOMENCLATURE = "standard"
    settings.LOCALE_PATHS = nomenclature.locale_paths("standard")
    assert _titles(admin_user)[0][4:6] == ["Sources", "Handlers"]
