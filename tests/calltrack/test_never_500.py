"""Public endpoints answer a clear 4xx (or 503 while the database is down) to anything, never a 500."""

from __future__ import annotations

import json
from unittest import mock

import pytest
from django.db import OperationalError
from django.db.backends.utils import CursorWrapper
from rest_framework.authtoken.models import Token

from calltrack.numbers.models import NumberSession
from tests.numbers.factories import NumberPoolFactory, TrackingNumberFactory
from tests.tracking.factories import CallFactory, HandlerFactory, UserFactory
from tracking.services.conversions import postback_token

pytestmark = pytest.mark.django_db
ORIGIN = "https://www.acme.example"


@pytest.fixture
def pool():
    pool = NumberPoolFactory(key="main", allowed_origins=ORIGIN)
    TrackingNumberFactory(number="+14152000001", kind="pool", pool=pool, campaign=pool.campaign)
    return pool


def dni(client, path, body):
    data = body if isinstance(body, str) else json.dumps(body)
    return client.post(path, data=data, content_type="text/plain", HTTP_ORIGIN=ORIGIN)


GOOD = {"pool": "main", "visitor_id": "visitor-0001", "page_url": "https://www.acme.example/", "params": {"utm_source": "g"}}


@pytest.mark.parametrize(
    "field, value",
    [
        ("pool", "ma\x00in"), ("visitor_id", "visitor\x000001"), ("page_url", "https://www.acme.example/\x00"),
        ("referrer", "https://x.example/\ud800"), ("destination", "415\x00555"), ("page_url", "https://www.acme.example/?utm_source=%00"),
    ],
)
def test_dni_assign_refuses_nul_bytes_and_lone_surrogates_with_a_400(client, pool, field, value):
    body = {**GOOD, field: value}
    if field == "page_url" and "utm_source" in value:
        body.pop("params")
    response = dni(client, "/dni/v1/assign", body)
    assert response.status_code == 400, response.content
    assert not NumberSession.objects.exists()


def test_dni_assign_refuses_a_nul_in_a_marketing_parameter(client, pool):
    response = dni(client, "/dni/v1/assign", {**GOOD, "params": {"utm_campaign": "spring\x00"}})
    assert response.status_code == 400 and response.json()["field"] == "params.utm_campaign"


def test_dni_json_with_an_escaped_lone_surrogate_is_a_400(client, pool):
    response = dni(client, "/dni/v1/assign", '{"pool": "main", "visitor_id": "visitor-0001", "referrer": "https://x.example/\\ud800"}')
    assert response.status_code == 400


@pytest.mark.parametrize("session_id", ["²", "١٢", "99999999999999999999999", 2**70, "12\x00", -1, 1.5])
def test_dni_heartbeat_refuses_odd_session_ids_with_a_400(client, pool, session_id):
    response = dni(client, "/dni/v1/heartbeat", {"pool": "main", "visitor_id": "visitor-0001", "session_id": session_id})
    assert response.status_code == 400 and response.json()["field"] == "session_id"


def _database_down():
    return mock.patch.object(CursorWrapper, "execute", side_effect=OperationalError("server closed the connection unexpectedly"))


def test_dni_answers_json_503_with_cors_headers_while_the_database_is_down(client, pool):
    with _database_down():
        response = dni(client, "/dni/v1/assign", GOOD)
    assert response.status_code == 503
    assert response["Content-Type"] == "application/json" and "error" in response.json()
    assert response["Access-Control-Allow-Origin"] == ORIGIN and response["Retry-After"]


def test_healthz_answers_503_while_the_database_is_down(client):
    assert client.get("/healthz").status_code == 200
    with _database_down():
        response = client.get("/healthz")
    assert response.status_code == 503 and response.json()["ok"] is False


def test_the_api_answers_503_while_the_database_is_down(client):
    user = UserFactory(is_staff=True, is_superuser=True)
    token = Token.objects.create(user=user).key
    with _database_down():
        response = client.get("/api/v1/sources/", HTTP_AUTHORIZATION=f"Token {token}")
    assert response.status_code == 503 and "temporarily unavailable" in response.json()["detail"]


@pytest.mark.parametrize(
    "query",
    ["call_id=%C2%B2", "call_id=99999999999999999999999999", "call_sid=%00", "call_sid=CA%00x", "caller_number=%2B1415%00555",
     "call_sid=" + "x" * 500],
)
def test_the_postback_url_refuses_odd_values_with_a_400(client, query):
    handler = HandlerFactory()
    response = client.get(f"/postback/{handler.pk}/{postback_token(handler_id=handler.pk)}/?{query}")
    assert response.status_code == 400, response.content


def test_a_non_ascii_postback_token_is_a_403(client):
    handler = HandlerFactory()
    assert client.get(f"/postback/{handler.pk}/%C3%A9t%C3%A9/?call_id=1").status_code == 403


def test_the_postback_token_is_also_accepted_in_a_header(client):
    handler = HandlerFactory()
    call = CallFactory(handler=handler)
    token = postback_token(handler_id=handler.pk)
    assert client.get(f"/postback/{handler.pk}/?call_id={call.pk}", HTTP_X_CALLTRACK_POSTBACK_TOKEN="wrong").status_code == 403
    response = client.get(f"/postback/{handler.pk}/?call_id={call.pk}", HTTP_X_CALLTRACK_POSTBACK_TOKEN=token)
    assert response.status_code == 422  # authorised; this call has no postback rule
    assert client.get(f"/postback/{handler.pk}/?call_id={call.pk}").status_code == 403


@pytest.mark.parametrize("path", ["/api/v1/calls/", "/api/v1/sessions/"])
@pytest.mark.parametrize("value", ["2026-01-01T00:00:00-16:53", "0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-10:00"])
def test_datetime_filters_postgresql_cannot_store_are_a_400(client, path, value):
    user = UserFactory(is_staff=True, is_superuser=True)
    auth = {"HTTP_AUTHORIZATION": f"Token {Token.objects.create(user=user).key}"}
    response = client.get(path, {"started_after": value}, **auth)
    assert response.status_code == 400, response.content
    assert client.get(path, {"started_after": "2026-01-01T00:00:00+05:30"}, **auth).status_code == 200
