"""The dashboard's spam panel (issue 28): the period's calls over the threshold, what was done about them, the
reasons and the callers, each linked to the call log filtered to the same calls; collaborators see their own
calls' counts and callers only (what was done and why is the routing decision, which they do not see)."""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

import pytest
from django.test import Client
from django.urls import reverse

from calltrack import reports
from calltrack.scoping import Scope
from calltrack.spam_figures import spam_figures
from tests.reports.spam_world import make_spam_world
from tests.tracking.factories import UserFactory
from tracking.models import Collaborator

pytestmark = pytest.mark.django_db


def login(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def world():
    return make_spam_world()


@pytest.fixture
def boss(db):
    return login(UserFactory(username="boss", is_staff=True, is_superuser=True))


def log_ids(client, url) -> set[int]:
    """The calls the call log lists at ``url``."""
    response = client.get(url)
    assert response.status_code == 200, url
    return {row.pk for row in response.context["cl"].result_list}


def test_the_figures_count_the_periods_spam_calls_by_action_reason_and_caller(world):
    figures = spam_figures(scope=Scope(), period=reports.period_for("7d"))
    assert (figures.scored, figures.spam, figures.detail) == (8, 6, True)
    assert {key: n for key, _, n in figures.actions} == {
        "reject": 2, "challenge": 2, "passed": 1, "failed": 1, "not_payable": 1, "tag": 1}
    assert figures.reasons[:2] == [("attestation_failed", "STIR/SHAKEN failed", 3), ("repeat_dialer", "Repeat dialer", 3)]
    assert {code: n for code, _, n in figures.reasons} == {
        "attestation_failed": 3, "repeat_dialer": 3, "caller_name": 1, "unpublished_number": 1, "attestation_c": 1}
    assert figures.callers == [("+14155550111", 3), ("+14155550122", 3)]


def test_the_panel_links_each_figure_to_the_same_calls_in_the_log(world, boss):
    page = boss.get(reverse("admin:index") + "?range=7d")
    spam = page.context["spam"]
    assert (spam["spam"], spam["scored"], spam["share"]) == ("6", "8", "75.0%")
    html = page.content.decode()
    assert 'data-testid="spam-panel"' in html and "Top spam callers" in html and "(415) 555-0111" in html
    spam_ids = {c.pk for c in world.calls[:5]} | {world.calls[8].pk}
    assert log_ids(boss, spam["url"]) == spam_ids
    actions = {a["key"]: a for a in spam["actions"]}
    assert log_ids(boss, actions["reject"]["url"]) == {world.calls[0].pk, world.calls[8].pk}
    assert log_ids(boss, actions["challenge"]["url"]) == {world.calls[1].pk, world.calls[2].pk}
    assert log_ids(boss, actions["failed"]["url"]) == {world.calls[1].pk}
    assert log_ids(boss, actions["not_payable"]["url"]) == {world.calls[3].pk}
    reasons = {r["code"]: r for r in spam["reasons"]}
    assert log_ids(boss, reasons["repeat_dialer"]["url"]) == {world.calls[2].pk, world.calls[3].pk, world.calls[8].pk}
    # "attestation_c" is not "attestation_failed", nor the other way round.
    assert log_ids(boss, reasons["attestation_c"]["url"]) == {world.calls[4].pk}
    caller = spam["callers"][0]
    assert log_ids(boss, caller["url"]) == {c.pk for c in world.calls[:3]}
    query = parse_qs(urlparse(caller["url"]).query)
    assert query["tag"] == ["spam:yes"] and query["test"] == ["exclude"]
    assert query["started_at__gte"] == [reports.call_log_params(reports.period_for("7d"))["started_at__gte"]]


def test_a_source_collaborator_sees_its_own_spam_counts_and_callers_but_not_the_decision(world):
    user = UserFactory(username="partner", is_staff=True)
    Collaborator.objects.create(user=user, source=world.radio)
    client = login(user)
    page = client.get(reverse("admin:index") + "?range=7d")
    spam = page.context["spam"]
    assert (spam["spam"], spam["scored"], spam["detail"]) == ("1", "1", False)
    assert spam["actions"] == [] and spam["reasons"] == []
    assert [c["number"] for c in spam["callers"]] == ["+14155550122"]
    html = page.content.decode()
    assert 'data-testid="spam-actions"' not in html and "Top reasons" not in html
    assert log_ids(client, spam["url"]) == {world.calls[8].pk}
    # The log's spam filter reads the routing decision: refused for a collaborator (the log says so, lists nothing).
    refused = client.get(reverse("admin:tracking_call_changelist") + "?spam=reject")
    assert refused.status_code == 302 and "e=1" in refused["Location"]


def test_no_panel_when_no_call_of_the_period_was_scored(boss):
    page = boss.get(reverse("admin:index") + "?range=7d")
    assert page.context["spam"] is None and 'data-testid="spam-panel"' not in page.content.decode()


@pytest.mark.parametrize(("value", "status"), [("reason:nope", 302), ("maybe", 302), ("%00", 400)])
def test_the_logs_spam_filter_refuses_what_it_does_not_know(world, boss, value, status):
    """An unknown value sends the log back to itself with its error flag (Django's IncorrectLookupParameters); a NUL
    byte is refused before any query, as in every filter of the log."""
    response = boss.get(reverse("admin:tracking_call_changelist") + f"?spam={value}")
    assert response.status_code == status
    if status == 302:
        assert "e=1" in response["Location"]
