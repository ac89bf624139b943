"""Issue 30: a pool key is unique in its account, not in the install. Two clients may both run a 'spring' pool; a
page tag names the first account's by its key (as before accounts) and any other's as ``slug/key``; an unknown slug
names no pool, never another account's."""

from __future__ import annotations

import json

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.test import RequestFactory

from calltrack.models import Account
from calltrack.numbers.dni.pools import forget_pool_settings, pool_name_split, pool_settings, pool_tag_name
from calltrack.numbers.models import NumberPool, NumberSession
from tests.numbers.factories import NumberPoolFactory, TrackingNumberFactory
from tests.tracking.factories import CampaignFactory

pytestmark = pytest.mark.django_db(transaction=False)

ASSIGN = "/dni/v1/assign"
HEARTBEAT = "/dni/v1/heartbeat"
ORIGIN = "https://www.roofs.example"


@pytest.fixture
def pools():
    forget_pool_settings()
    first = Account.objects.get_or_create(slug="default", defaults={"name": "Default"})[0]
    bravo = Account.objects.create(name="Bravo Roofing", slug="bravo")
    made = {}
    for account, number in ((first, "+14152000001"), (bravo, "+14152000002")):
        campaign = CampaignFactory(name="Main", account=account)
        pool = NumberPoolFactory(name="Spring", key="spring", campaign=campaign, account=account, allowed_origins=ORIGIN)
        TrackingNumberFactory(number=number, kind="pool", pool=pool, campaign=campaign, account=account)
        made[f"{account.slug}_pool"] = pool
    yield {"first": first, "bravo": bravo, **made}
    forget_pool_settings()


def assign(client, name, visitor="v-0123456789", **extra):
    body = {"pool": name, "visitor_id": visitor, "page_url": f"{ORIGIN}/", "destination": "(415) 555-0100", **extra}
    return client.post(ASSIGN, data=json.dumps(body), content_type="text/plain", HTTP_ORIGIN=ORIGIN)


def test_two_accounts_may_use_the_same_pool_key_but_one_account_may_not_twice(pools):
    assert pools["default_pool"].key == pools["bravo_pool"].key == "spring"
    with pytest.raises(IntegrityError), transaction.atomic():
        NumberPoolFactory(key="spring", campaign=pools["bravo_pool"].campaign, account=pools["bravo"])
    # A derived key is unique within its own account: "Spring" in a third account is "spring", again in B "spring-2".
    third = Account.objects.create(name="Third", slug="third")
    assert NumberPoolFactory(name="Spring", campaign=CampaignFactory(account=third), account=third).key == "spring"
    assert NumberPoolFactory(name="Spring", campaign=pools["bravo_pool"].campaign, account=pools["bravo"]).key == "spring-2"


def test_a_tag_names_the_first_accounts_pool_by_key_and_another_by_slug_and_key(pools):
    assert pool_tag_name(pools["default_pool"]) == "spring"
    assert pool_tag_name(pools["bravo_pool"]) == "bravo/spring"
    assert pool_name_split("bravo/spring") == ("bravo", "spring") and pool_name_split("spring") == ("", "spring")
    assert pool_settings("spring").id == pools["default_pool"].pk
    assert pool_settings("bravo/spring").id == pools["bravo_pool"].pk
    assert pool_settings("default/spring").id == pools["default_pool"].pk  # the first account by its slug too
    assert pool_settings("nobody/spring") is None  # never falls back to the first account


@pytest.mark.parametrize("repeat", [1, 2])  # the second pass reads the settings this worker kept (PostgreSQL)
def test_each_tag_gets_a_number_of_its_own_accounts_pool(client, pools, repeat):
    for _ in range(repeat):
        first = assign(client, "spring", visitor="v-first-visitor")
        other = assign(client, "bravo/spring", visitor="v-bravo-visitor")
        assert first.status_code == other.status_code == 200, (first.content, other.content)
        assert first.json()["number"] == "+14152000001"
        assert other.json()["number"] == "+14152000002"
    sessions = {s.visitor_id: s.pool_id for s in NumberSession.objects.all()}
    assert sessions == {"v-first-visitor": pools["default_pool"].pk, "v-bravo-visitor": pools["bravo_pool"].pk}
    beat = client.post(HEARTBEAT, data=json.dumps({"pool": "bravo/spring", "visitor_id": "v-bravo-visitor",
                                                   "session_id": other.json()["session_id"]}),
                       content_type="text/plain", HTTP_ORIGIN=ORIGIN)
    assert beat.status_code == 200, beat.content
    # B's session cannot be kept alive through A's pool of the same key.
    crossed = client.post(HEARTBEAT, data=json.dumps({"pool": "spring", "visitor_id": "v-bravo-visitor",
                                                      "session_id": other.json()["session_id"]}),
                          content_type="text/plain", HTTP_ORIGIN=ORIGIN)
    assert crossed.status_code != 200


@pytest.mark.parametrize(("name", "status"), [
    ("nobody/spring", 404), ("bravo/none", 404), ("bravo/", 400), ("/spring", 400), ("a/b/c", 400),
    ("bravo/spr\x00ing", 400), ("br\u0430vo/spring", 400), ("b" * 65 + "/spring", 400), ("bravo/" + "s" * 65, 400),
])
def test_a_bad_or_unknown_pool_name_is_a_clear_error(client, pools, name, status):
    response = assign(client, name)
    assert response.status_code == status, response.content
    assert "pool" in response.json()["error"]
    assert not NumberSession.objects.exists()


def test_a_slug_renamed_is_seen_at_once(client, pools):
    assert assign(client, "bravo/spring").status_code == 200
    pools["bravo"].slug = "bravo-roofing"
    pools["bravo"].save()
    assert assign(client, "bravo/spring").status_code == 404
    again = assign(client, "bravo-roofing/spring")
    assert again.json()["number"] == "+14152000002", again.content


def _pool_form(account, data):
    user = get_user_model().objects.get_or_create(username="root-pools", defaults={"is_superuser": True, "is_staff": True})[0]
    request = RequestFactory().post("/")
    request.user = user
    from calltrack.accounts import acting_in
    with acting_in(account.pk):
        form_class = admin.site._registry[NumberPool].get_form(request, None, change=False)
        return form_class(data=data)


def test_the_admin_refuses_a_key_the_account_already_has_as_a_form_error(pools, rf):
    data = {"name": "Again", "key": "spring", "enabled": "on", "campaign": pools["default_pool"].campaign_id, "number_type": "match",
            "session_lifetime": 1800, "attribution_window": 72, "overflow_policy": "reuse_oldest", "autoscale_min": 5,
            "autoscale_max": 100, "autoscale_headroom": "0.20"}
    form = _pool_form(pools["first"], data)
    assert not form.is_valid()
    assert form.errors["key"] == ["Another number pool of this account has this key."]
    form = _pool_form(pools["first"], {**data, "key": "summer"})
    assert form.is_valid(), form.errors


def test_the_pool_page_shows_the_tag_that_names_it(admin_client, pools):
    page = admin_client.get(f"/admin/numbers/numberpool/{pools['default_pool'].pk}/change/").content.decode()
    assert 'data-pool=&quot;spring&quot;' in page
    assert "http://testserver/static/calltrack/dni.js" in page  # this console's origin (no public base URL set)


def test_the_api_gives_each_pool_its_tag_name_with_no_statement_per_pool(pools, django_assert_max_num_queries):
    from django.contrib.auth.models import Permission
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    from calltrack.models import Membership
    from tests.tracking.factories import UserFactory

    def member_of(account):
        user = UserFactory(username=f"owner-{account.slug}", is_staff=True)
        user.user_permissions.add(*Permission.objects.filter(content_type__app_label="numbers"))
        Membership.objects.create(user=user, account=account, role="owner")
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0].key}")
        return client

    first, bravo = member_of(pools["first"]), member_of(pools["bravo"])
    assert [p["tag_name"] for p in first.get("/api/v1/pools/").json()["results"]] == ["spring"]
    assert [p["tag_name"] for p in bravo.get("/api/v1/pools/").json()["results"]] == ["bravo/spring"]
    assert bravo.get(f"/api/v1/pools/{pools['bravo_pool'].pk}/").json()["tag_name"] == "bravo/spring"
    # Five more of B's pools: the list's statements stay the same.
    for i in range(5):
        NumberPoolFactory(name=f"Summer {i}", campaign=pools["bravo_pool"].campaign, account=pools["bravo"])
    with django_assert_max_num_queries(12) as counted:
        names = [p["tag_name"] for p in bravo.get("/api/v1/pools/").json()["results"]]
    assert sorted(names) == ["bravo/spring", *(f"bravo/summer-{i}" for i in range(5))]
    before = len(counted)
    NumberPoolFactory(name="Autumn", campaign=pools["bravo_pool"].campaign, account=pools["bravo"])
    with django_assert_max_num_queries(before):
        assert len(bravo.get("/api/v1/pools/").json()["results"]) == 7
    # Read-only: a PATCH naming a tag changes nothing.
    response = bravo.patch(f"/api/v1/pools/{pools['bravo_pool'].pk}/", {"tag_name": "x/y"}, format="json")
    assert response.status_code == 200 and response.json()["tag_name"] == "bravo/spring"
