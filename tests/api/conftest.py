"""Fixtures for the API tests: three users (staff, source collaborator, handler collaborator) and a small world."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from calltrack.numbers.models import NumberKind
from tests.numbers.factories import NumberPoolFactory, NumberSessionFactory, TrackingNumberFactory
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


def token_client(user) -> APIClient:
    client = APIClient()
    token, _ = Token.objects.get_or_create(user=user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


def grant(user, *codenames: str) -> None:
    """Give ``user`` the named permissions ("numbers.view_trackingnumber", or "all")."""
    if codenames == ("all",):
        perms = Permission.objects.filter(content_type__app_label__in=["tracking", "numbers"])
    else:
        perms = [Permission.objects.get(content_type__app_label=c.split(".")[0], codename=c.split(".")[1]) for c in codenames]
    user.user_permissions.add(*perms)


@pytest.fixture
def staff_user(db):
    user = UserFactory(username="staff", is_staff=True)
    grant(user, "all")
    return user


@pytest.fixture
def staff(staff_user) -> APIClient:
    return token_client(staff_user)


@dataclass
class World:
    source: object
    other_source: object
    handler: object
    other_handler: object
    campaign: object
    call_mine: object  # source + handler
    call_other: object  # other source, other handler
    call_source_only: object  # source, other handler
    static_mine: object
    static_other: object
    pool_mine: object
    pool_other: object
    pool_number_mine: object
    pool_number_other: object
    session_mine: object
    session_other: object


@pytest.fixture
def world(db) -> World:
    source, other_source = SourceFactory(name="Mine"), SourceFactory(name="Other")
    handler, other_handler = HandlerFactory(name="Buyer A"), HandlerFactory(name="Buyer B")
    campaign = CampaignFactory()
    CampaignHandlerFactory(campaign=campaign, handler=handler)
    CampaignHandlerFactory(campaign=campaign, handler=other_handler)
    now = timezone.now()
    call_mine = CallFactory(campaign=campaign, source=source, handler=handler, revenue=Decimal("30"), payout=Decimal("12"), started_at=now - timedelta(hours=3))
    CallAttemptFactory(call=call_mine, handler=other_handler, sequence=0, status="no_answer")
    CallAttemptFactory(call=call_mine, handler=handler, sequence=1, status="completed")
    call_other = CallFactory(campaign=campaign, source=other_source, handler=other_handler, started_at=now - timedelta(hours=2))
    call_source_only = CallFactory(campaign=campaign, source=source, handler=other_handler, started_at=now - timedelta(hours=1))
    static_mine = TrackingNumberFactory(campaign=campaign, source=source)
    static_other = TrackingNumberFactory(campaign=campaign, source=other_source)
    pool_mine = NumberPoolFactory(campaign=campaign, source=source)
    pool_other = NumberPoolFactory(campaign=campaign, source=other_source)
    pool_number_mine = TrackingNumberFactory(campaign=campaign, kind=NumberKind.POOL, pool=pool_mine)
    pool_number_other = TrackingNumberFactory(campaign=campaign, kind=NumberKind.POOL, pool=pool_other)
    session_mine = NumberSessionFactory(pool=pool_mine, tracking_number=pool_number_mine)
    session_other = NumberSessionFactory(pool=pool_other, tracking_number=pool_number_other)
    return World(
        source, other_source, handler, other_handler, campaign, call_mine, call_other, call_source_only,
        static_mine, static_other, pool_mine, pool_other, pool_number_mine, pool_number_other, session_mine, session_other,
    )


@pytest.fixture
def source_collaborator(world) -> APIClient:
    # Staff so that they can log in to the admin too; scoping must still apply.
    user = UserFactory(username="src-collab", is_staff=True)
    Collaborator.objects.create(user=user, source=world.source)
    return token_client(user)


@pytest.fixture
def handler_collaborator(world) -> APIClient:
    user = UserFactory(username="handler-collab")
    Collaborator.objects.create(user=user, handler=world.handler)
    return token_client(user)
