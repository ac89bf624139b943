"""Accounts (issue 30): each request acts in one account; rows, choices, tokens and roles stay inside it."""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

import pytest
from django.contrib.auth.models import Permission
from django.db import IntegrityError, transaction
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from calltrack import accounts
from calltrack.models import Account, AccountRole, AccountToken, Membership
from calltrack.scoping import ACCOUNT_PATHS, INSTALL_MODELS, scope_for
from tests.numbers.factories import TrackingNumberFactory
from tests.tracking.factories import CallFactory, CampaignFactory, HandlerFactory, SourceFactory, UserFactory
from tracking.models import Collaborator, Source

pytestmark = pytest.mark.django_db


def grant_all(user) -> None:
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label__in=["tracking", "numbers", "calltrack"]))


@pytest.fixture
def two():
    """Account A (the install's first) and B, each with a source of the same public id and a call."""
    a = Account.objects.get_or_create(slug="default", defaults={"name": "Default"})[0]
    b = Account.objects.create(name="Bravo Roofing", slug="bravo")
    src_a = SourceFactory(name="Google", source_id="google", account=a)
    src_b = SourceFactory(name="Google", source_id="google", account=b)
    tn_a = TrackingNumberFactory(number="+14155550001", source=src_a, campaign=CampaignFactory(name="Main", account=a), account=a)
    tn_b = TrackingNumberFactory(number="+14155550002", source=src_b, campaign=CampaignFactory(name="Main", account=b), account=b)
    call_a = CallFactory(source=src_a, tracking_number=tn_a, campaign=tn_a.campaign, caller_number="+13035550101", account=a)
    call_b = CallFactory(source=src_b, tracking_number=tn_b, campaign=tn_b.campaign, caller_number="+13035550102", account=b)
    return {"a": a, "b": b, "src_a": src_a, "src_b": src_b, "tn_a": tn_a, "tn_b": tn_b, "call_a": call_a, "call_b": call_b}


def member(account, role=AccountRole.OWNER, username=None, *more):
    user = UserFactory(username=username or f"{role}-{account.slug}", is_staff=True)
    grant_all(user)
    Membership.objects.create(user=user, account=account, role=role)
    for other in more:
        Membership.objects.create(user=user, account=other, role=role)
    return user


def api(user, **headers) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0].key}", **headers)
    return client


def test_every_model_says_where_its_rows_belong():
    from django.apps import apps

    undeclared = [m._meta.label_lower for m in apps.get_models() if m._meta.label_lower not in ACCOUNT_PATHS
                  and m._meta.label_lower not in INSTALL_MODELS]
    assert undeclared == []
    for label, path in ACCOUNT_PATHS.items():  # each path reaches the account table
        model = apps.get_model(label)
        model.objects.filter(**{"pk" if path == "pk" else f"{path}_id": 1}).exists()


def test_a_source_id_is_unique_per_account_only(two):
    assert two["src_a"].source_id == two["src_b"].source_id == "google"
    with pytest.raises(IntegrityError), transaction.atomic():
        Source.objects.create(name="Again", source_id="google", account=two["b"])
    # A derived id is made unique within its own account.
    assert Source.objects.create(name="Google", account=two["b"]).source_id == "google-2"


def test_the_api_acts_in_the_requested_account_and_no_other(two):
    user = member(two["a"], AccountRole.OWNER, "agency", two["b"])
    first = api(user).get("/api/v1/calls/")
    assert [c["id"] for c in first.json()["results"]] == [two["call_a"].pk]
    in_b = api(user, HTTP_X_CALLTRACK_ACCOUNT="bravo").get("/api/v1/calls/")
    assert [c["id"] for c in in_b.json()["results"]] == [two["call_b"].pk]
    assert api(user).get(f"/api/v1/calls/{two['call_b'].pk}/").status_code == 404
    assert api(user).get(f"/api/v1/calls/{two['call_b'].pk}/?account={two['b'].pk}").status_code == 200
    # A source created in B belongs to B; B's id may be chosen there, A's may not.
    made = api(user, HTTP_X_CALLTRACK_ACCOUNT="bravo").post("/api/v1/sources/", {"name": "Bing", "source_id": "bing"}, format="json")
    assert made.status_code == 201, made.content
    assert Source.objects.get(pk=made.json()["id"]).account_id == two["b"].pk


def test_an_account_the_user_does_not_belong_to_is_refused(two):
    only_a = member(two["a"], AccountRole.OWNER, "only-a")
    assert api(only_a, HTTP_X_CALLTRACK_ACCOUNT="bravo").get("/api/v1/calls/").status_code == 403
    assert api(only_a, HTTP_X_CALLTRACK_ACCOUNT="nope\x00").get("/api/v1/calls/").status_code == 403


def test_a_token_bound_to_an_account_reads_that_account_only(two):
    user = member(two["a"], AccountRole.OWNER, "agency", two["b"])
    token = AccountToken.objects.create(user=user, account=two["b"], name="CRM")
    assert token.key.startswith("ct_")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    assert [c["id"] for c in client.get("/api/v1/calls/").json()["results"]] == [two["call_b"].pk]
    assert client.get(f"/api/v1/calls/{two['call_a'].pk}/").status_code == 404
    assert client.get("/api/v1/calls/?account=default").status_code == 403
    # Its user leaves the account: the token stops working.
    Membership.objects.filter(user=user, account=two["b"]).delete()
    assert client.get("/api/v1/calls/").status_code == 401


def test_an_analyst_reads_and_writes_nothing(two, client):
    analyst = member(two["b"], AccountRole.ANALYST)
    assert api(analyst).get("/api/v1/sources/").json()["count"] == 1
    assert api(analyst).post("/api/v1/sources/", {"name": "X"}, format="json").status_code == 403
    client.force_login(analyst)
    assert client.get("/admin/tracking/source/").status_code == 200
    assert client.get("/admin/tracking/source/add/").status_code == 403


def test_a_billing_user_sees_no_records(two, client):
    billing = member(two["b"], AccountRole.BILLING)
    assert api(billing).get("/api/v1/calls/").status_code == 403
    client.force_login(billing)
    assert client.get("/admin/tracking/call/").status_code == 403


def test_the_admin_switches_account_by_a_signed_link(two, client):
    user = member(two["a"], AccountRole.OWNER, "agency", two["b"])
    client.force_login(user)
    page = client.get("/admin/tracking/call/")
    assert two["call_a"].caller_number[-4:] in page.content.decode() and two["call_b"].caller_number[-4:] not in page.content.decode()
    # The header's switcher offers both accounts; its link for B is signed for this user.
    request = page.wsgi_request
    items = accounts.header_dropdown(request)
    assert [i["title"] for i in items] == ["Default", "Bravo Roofing"]
    link = items[1]["link"]
    assert client.get(link).status_code == 302
    page = client.get("/admin/tracking/call/")
    assert two["call_b"].caller_number[-4:] in page.content.decode() and two["call_a"].caller_number[-4:] not in page.content.decode()
    # Another user cannot use that link, and a forged one is refused.
    other = member(two["a"], AccountRole.OWNER, "other")
    client.force_login(other)
    assert client.get(link).status_code == 403
    query = parse_qs(urlparse(link).query)
    assert client.get(f"/admin/account/switch/?to={query['to'][0][:-2]}xx").status_code == 400


def test_a_one_account_install_shows_no_switcher(two, client):
    user = member(two["a"], AccountRole.OWNER, "solo")
    client.force_login(user)
    page = client.get("/admin/")
    assert accounts.header_dropdown(page.wsgi_request) == []
    assert "Bravo" not in page.content.decode()


def test_a_collaborator_works_in_its_partys_account(two):
    user = UserFactory(username="pub", is_staff=True)
    Collaborator.objects.create(user=user, source=two["src_b"])
    assert scope_for(user).account_id == two["b"].pk
    assert [c["id"] for c in api(user).get("/api/v1/calls/").json()["results"]] == [two["call_b"].pk]


def test_admin_choices_and_filters_offer_the_accounts_rows_only(two, client):
    user = member(two["b"], AccountRole.OWNER, "owner-b")
    client.force_login(user)
    HandlerFactory(name="Alpha only handler", account=two["a"])
    HandlerFactory(name="Bravo handler", account=two["b"])
    CampaignFactory(name="Alpha only campaign", account=two["a"])
    CampaignFactory(name="Bravo campaign", account=two["b"])
    found = client.get("/admin/autocomplete/", {"app_label": "numbers", "model_name": "trackingnumber", "field_name": "campaign", "term": ""})
    names = [r["text"] for r in found.json()["results"]]
    assert "Bravo campaign" in names and "Alpha only campaign" not in names
    listed = client.get("/admin/numbers/trackingnumber/").content.decode()  # its campaign list filter
    assert "Bravo campaign" in listed and "Alpha only campaign" not in listed
    found = client.get("/admin/autocomplete/", {"app_label": "tracking", "model_name": "campaignhandler", "field_name": "handler", "term": ""})
    names = [r["text"] for r in found.json()["results"]]
    assert "Bravo handler" in names and "Alpha only handler" not in names
    numbers = client.get("/admin/numbers/trackingnumber/").content.decode()
    assert "(415) 555-0002" in numbers and "(415) 555-0001" not in numbers


def test_an_owner_adds_a_member_by_login_and_a_duplicate_is_refused(two, client):
    owner = member(two["b"], AccountRole.OWNER, "owner-b")
    UserFactory(username="newbie")
    client.force_login(owner)
    response = client.post("/admin/calltrack/membership/add/", {"username": "newbie", "role": "analyst"})
    assert response.status_code == 302, response.content.decode()[:2000]
    assert Membership.objects.get(user__username="newbie").account_id == two["b"].pk
    again = client.post("/admin/calltrack/membership/add/", {"username": "newbie", "role": "admin"})
    assert "already a member" in again.content.decode()
    # An admin (not an owner) manages no members.
    admin_user = member(two["b"], AccountRole.ADMIN, "admin-b")
    client.force_login(admin_user)
    assert client.get("/admin/calltrack/membership/add/").status_code == 403


def test_staff_without_membership_keep_the_first_account_when_a_second_is_made(db):
    old_hand = UserFactory(username="old-hand", is_staff=True)
    grant_all(old_hand)
    assert scope_for(old_hand).account_id == Account.objects.get_or_create(slug="default", defaults={"name": "Default"})[0].pk
    Account.objects.create(name="Client", slug="client")
    assert Membership.objects.get(user=old_hand).role == AccountRole.ADMIN
    # A staff user added later with no membership acts nowhere: it sees no row.
    newcomer = UserFactory(username="newcomer", is_staff=True)
    grant_all(newcomer)
    SourceFactory(name="Somebody's")
    assert api(newcomer).get("/api/v1/sources/").status_code == 403


@pytest.mark.parametrize("url", ["/admin/", "/admin/tracking/call/", "/admin/tracking/source/"])
def test_an_admin_request_reads_the_users_accounts_once(two, client, url):
    """The user's places, and of each account its words, time zone, name and currency (the header's switcher and
    subheader, the console's dates and money): one statement per request, whatever the page."""
    import re

    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    two["b"].time_zone, two["b"].currency = "Asia/Tokyo", "JPY"
    two["b"].save()
    user = member(two["a"], AccountRole.OWNER, "agency", two["b"])
    client.force_login(user)
    client.get(url)
    with CaptureQueriesContext(connection) as ctx:
        page = client.get(url)
    assert page.status_code == 200
    reads = [q["sql"] for q in ctx.captured_queries if re.search(r'FROM "?calltrack_account"?( |$)', q["sql"])]
    assert len(reads) == 1, reads
    assert "Default" in page.content.decode()  # the subheader names the account acted in
