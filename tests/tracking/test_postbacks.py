"""Postbacks in: the token API endpoint and the signed CRM postback URL convert a call once."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests.tracking.factories import (
    HandlerFactory,
    UserFactory,
)
from tracking.models import Collaborator, ConversionStatus
from tracking.services.conversions import postback_token, postback_url

pytestmark = pytest.mark.django_db


def token_client(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


def test_staff_converts_a_call_with_a_token_and_a_repeat_is_409(call):
    client = token_client(UserFactory(is_staff=True, is_superuser=True))
    response = client.post(f"/api/v1/calls/{call.pk}/conversion")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["converted"] is True and body["conversion_status"] == "converted"
    assert (body["revenue"], body["payout"], body["margin"]) == ("50.00", "20.00", "30.00")
    again = client.post(f"/api/v1/calls/{call.pk}/conversion")
    assert again.status_code == 409 and "already converted" in again.json()["detail"]
    call.refresh_from_db()
    assert call.revenue == Decimal("50.00")


def test_the_handler_collaborator_may_convert_its_calls_but_others_may_not(call):
    mine = UserFactory()
    Collaborator.objects.create(user=mine, handler=call.handler)
    other = UserFactory()
    Collaborator.objects.create(user=other, handler=HandlerFactory())
    source_user = UserFactory()
    Collaborator.objects.create(user=source_user, source=call.source)
    assert token_client(other).post(f"/api/v1/calls/{call.pk}/conversion").status_code == 404
    assert token_client(source_user).post(f"/api/v1/calls/{call.pk}/conversion").status_code == 404
    assert APIClient().post(f"/api/v1/calls/{call.pk}/conversion").status_code == 401
    assert token_client(mine).post(f"/api/v1/calls/{call.pk}/conversion").status_code == 200


def test_a_late_conversion_is_refused_with_the_reason(call):
    call.ended_at = timezone.now() - timedelta(hours=2)
    call.save()
    response = token_client(UserFactory(is_staff=True, is_superuser=True)).post(f"/api/v1/calls/{call.pk}/conversion")
    assert response.status_code == 422
    assert response.json() == {"converted": False, "detail": "postback came 120 min after the call ended; the limit is 60 min"}
    call.refresh_from_db()
    assert call.conversion_status == ConversionStatus.NOT_CONVERTED


def test_the_signed_postback_url_converts_once(call, client):
    url = postback_url(handler_id=call.handler_id)
    assert url.endswith(f"/postback/{call.handler_id}/{postback_token(handler_id=call.handler_id)}/")
    response = client.post(url, {"call_id": call.pk})
    assert response.status_code == 200
    assert response.json() == {"converted": True, "call_id": call.pk, "sides": ["revenue", "payout"], "revenue": "50.00", "payout": "20.00"}
    repeat = client.get(url, {"call_sid": call.call_sid})
    assert repeat.status_code == 409


def test_the_postback_finds_the_latest_call_of_a_caller_number(call, client):
    url = postback_url(handler_id=call.handler_id)
    response = client.get(url, {"caller_number": "(415) 555-0177"})
    assert response.status_code == 200 and response.json()["call_id"] == call.pk


def test_a_postback_with_a_wrong_token_or_for_another_handlers_call_is_refused(call, client):
    assert client.post(f"/postback/{call.handler_id}/{'0' * 40}/", {"call_id": call.pk}).status_code == 403
    other = HandlerFactory()
    response = client.post(postback_url(handler_id=other.pk), {"call_id": call.pk})
    assert response.status_code == 404
    call.refresh_from_db()
    assert not call.converted
    assert client.post(postback_url(handler_id=call.handler_id), {}).status_code == 400
    bad = client.get(postback_url(handler_id=call.handler_id), {"caller_number": "not a number"})
    assert bad.status_code == 400 and bad.json()["detail"].startswith("caller_number:")


def test_totals_are_available_to_the_api_per_collaborator(call):
    staff = token_client(UserFactory(is_staff=True, is_superuser=True))
    staff.post(f"/api/v1/calls/{call.pk}/conversion")
    rows = staff.get("/api/v1/conversions/totals", {"by": "handler"}).json()
    assert rows == [{"id": call.handler_id, "name": call.handler.name, "calls": 1, "converted": 1, "revenue": "50.00", "payout": "20.00", "margin": "30.00"}]
    stranger = UserFactory()
    Collaborator.objects.create(user=stranger, handler=HandlerFactory())
    assert token_client(stranger).get("/api/v1/conversions/totals", {"by": "handler"}).json() == []
    assert staff.get("/api/v1/conversions/totals", {"by": "planet"}).status_code == 400
