"""List endpoints cost a fixed number of queries whatever the page size (5 or 100 rows)."""

from __future__ import annotations

import pytest

from calltrack.numbers.models import NumberKind
from tests.api.conftest import token_client
from tests.numbers.factories import NumberPoolFactory, NumberSessionFactory, ReceivingNumberFactory, TrackingNumberFactory
from tests.tracking.factories import (
    CallAttemptFactory,
    CallFactory,
    CampaignFactory,
    CampaignHandlerFactory,
    HandlerFactory,
    SourceFactory,
    UserFactory,
)
from tracking.models import Collaborator

# Every request by a (non-superuser) staff token starts with the same 5 queries:
#   1 the token and its user, 2 the user's collaborator link (none), 3 the accounts it may act in (its memberships
#   and the first account, one statement), 4 the user's own permissions, 5 the permissions of the user's groups.
AUTH = 5


def make_campaigns(n, shared):
    for campaign in CampaignFactory.create_batch(n):
        CampaignHandlerFactory(campaign=campaign, handler=shared["handler"])


def make_calls(n, shared):
    for call in CallFactory.create_batch(n, campaign=shared["campaign"], source=shared["source"]):
        CallAttemptFactory(call=call, handler=shared["handler"])


def make_pools(n, shared):
    for pool in NumberPoolFactory.create_batch(n, campaign=shared["campaign"]):
        TrackingNumberFactory(kind=NumberKind.POOL, pool=pool, campaign=shared["campaign"])


def make_sessions(n, shared):
    pool = NumberPoolFactory(campaign=shared["campaign"])
    number = TrackingNumberFactory(kind=NumberKind.POOL, pool=pool, campaign=shared["campaign"])
    NumberSessionFactory.create_batch(n, pool=pool, tracking_number=number)


def make_texts(n, shared):
    from tracking.models import TextMessage

    TextMessage.objects.bulk_create(
        TextMessage(message_sid=f"SM{i:032d}", from_number="+14155550111", to_number="+14155550999", contact_number="+14155550111",
                    campaign=shared["campaign"], source=shared["source"], handler=shared["handler"], tags={"a": "b"})
        for i in range(n)
    )


CASES = {
    # name: (factory, queries after AUTH, what they are)
    "sources": (lambda n, s: SourceFactory.create_batch(n), 2, "COUNT, page"),
    "handlers": (lambda n, s: HandlerFactory.create_batch(n, receiving_number=s["line"]), 2, "COUNT, page"),
    "campaigns": (make_campaigns, 5, "COUNT, page, campaign handlers joined to their handler, IVR sub-menus, IVR keys"),
    "calls": (make_calls, 3, "page joined to the source (cursor: no COUNT), attempts, uploads to ad platforms (+ destination)"),
    "receiving-numbers": (lambda n, s: ReceivingNumberFactory.create_batch(n), 2, "COUNT, page"),
    "tracking-numbers": (lambda n, s: TrackingNumberFactory.create_batch(n, campaign=s["campaign"]), 2, "COUNT, page"),
    "pools": (make_pools, 3, "COUNT, page with the size annotation, the pools' accepted custom parameters"),
    "sessions": (make_sessions, 2, "COUNT, page joined to the tracking number"),
    "texts": (make_texts, 1, "page (cursor: no COUNT; parties as ids)"),
}


@pytest.fixture
def staff_client(db):
    from tests.api.conftest import grant

    user = UserFactory(username="counted", is_staff=True)
    grant(user, "all")
    return token_client(user)


@pytest.fixture
def shared(db):
    return {"campaign": CampaignFactory(), "source": SourceFactory(), "handler": HandlerFactory(), "line": ReceivingNumberFactory()}


@pytest.mark.parametrize("size", [5, 100])
@pytest.mark.parametrize("name", list(CASES))
def test_list_endpoints_use_a_fixed_number_of_queries(name, size, staff_client, shared, django_assert_num_queries):
    make, queries, _what = CASES[name]
    make(size, shared)
    with django_assert_num_queries(AUTH + queries):
        response = staff_client.get(f"/api/v1/{name}/", {"page_size": size})
    assert response.status_code == 200
    assert len(response.json()["results"]) >= size


@pytest.mark.parametrize("size", [5, 100])
def test_a_source_collaborators_call_list_is_fixed_cost_too(size, shared, django_assert_num_queries):
    user = UserFactory(username="collab-counted")
    Collaborator.objects.create(user=user, source=shared["source"])
    client = token_client(user)
    make_calls(size, shared)
    # token + user, collaborator link, page joined to the source; no attempts query (a source sees no legs).
    with django_assert_num_queries(3):
        response = client.get("/api/v1/calls/", {"page_size": size})
    assert len(response.json()["results"]) == size
