"""What one tag request costs, whole (view, pool, assignment), and the pool settings a worker keeps between requests:
re-checked by the request's own statement, so an edit made elsewhere (another worker, a bulk update) is never missed."""

from __future__ import annotations

import json

import pytest

from calltrack.numbers.dni.pools import forget_pool_settings
from calltrack.numbers.models import NumberPool, NumberSession, TrackingNumber
from tests.numbers.factories import NumberPoolFactory, TrackingNumberFactory

pytestmark = pytest.mark.django_db

ASSIGN = "/dni/v1/assign"
HEARTBEAT = "/dni/v1/heartbeat"
ORIGIN = "https://www.acme.example"


@pytest.fixture
def pool():
    pool = NumberPoolFactory(key="cost", allowed_origins=ORIGIN, session_lifetime=1800)
    for i in range(3):
        TrackingNumberFactory(number=f"+1415200000{i}", kind="pool", pool=pool, campaign=pool.campaign)
    forget_pool_settings()
    yield pool
    forget_pool_settings()


def post(client, path, body, **headers):
    headers.setdefault("HTTP_ORIGIN", ORIGIN)
    return client.post(path, data=json.dumps(body), content_type="text/plain", **headers)


def assign(client, visitor="v-0123456789", **extra):
    body = {"pool": "cost", "visitor_id": visitor, "page_url": "https://www.acme.example/a", "destination": "(415) 555-0100", **extra}
    return post(client, ASSIGN, body)


def test_a_returning_visitors_page_view_and_heartbeat_cost_one_statement_each_on_postgresql(
        client, pool, django_assert_num_queries, on_postgres):
    first = assign(client).json()
    # PostgreSQL: the pool this worker kept is re-checked by the one statement that finds and extends the session.
    # Elsewhere: the pool read, savepoint, live session, number's check, session update, release (each request).
    with django_assert_num_queries(1 if on_postgres else 6):
        again = assign(client)
    assert again.status_code == 200 and again.json()["number"] == first["number"]
    with django_assert_num_queries(1 if on_postgres else 6):
        beat = post(client, HEARTBEAT, {"pool": "cost", "visitor_id": "v-0123456789", "session_id": first["session_id"]})
    assert beat.status_code == 200 and beat.json()["session_id"] == first["session_id"]


def test_a_new_visitor_costs_two_statements_on_postgresql(client, pool, django_assert_num_queries, on_postgres):
    assign(client, "v-first-visitor")  # the worker has read the pool
    # PostgreSQL: the look for a live session (none); the open, which takes the visitor's lock first.
    with django_assert_num_queries(2 if on_postgres else 8):
        got = assign(client, "v-second-visitor")
    assert got.status_code == 200 and got.json()["overflow"] is False


def test_a_pool_disabled_elsewhere_is_not_used_by_the_worker_that_kept_it(client, pool):
    first = assign(client).json()
    expires = NumberSession.objects.get(pk=first["session_id"]).last_seen_at
    NumberPool.objects.filter(pk=pool.pk).update(enabled=False)  # no signal: as another worker's edit looks here

    assert assign(client).status_code == 404
    assert post(client, HEARTBEAT, {"pool": "cost", "visitor_id": "v-0123456789", "session_id": first["session_id"]}).status_code == 404
    assert assign(client, "v-newcomer-1").status_code == 404
    assert NumberSession.objects.get(pk=first["session_id"]).last_seen_at == expires  # nothing written
    assert NumberSession.objects.count() == 1


def test_an_origin_removed_elsewhere_is_refused_and_one_added_elsewhere_is_allowed(client, pool):
    assert assign(client).status_code == 200
    NumberPool.objects.filter(pk=pool.pk).update(allowed_origins="https://shop.acme.example")

    refused = assign(client)
    assert refused.status_code == 403
    assert post(client, ASSIGN, {"pool": "cost", "visitor_id": "v-shop-visitor"}, HTTP_ORIGIN="https://shop.acme.example").status_code == 200


def test_settings_changed_elsewhere_apply_to_the_next_request(client, pool):
    assign(client, "v-lifetime-1")
    NumberPool.objects.filter(pk=pool.pk).update(session_lifetime=600, overflow_policy="fallback", fallback_number="+18005550100")
    TrackingNumber.objects.filter(pool=pool).update(last_assigned_at="2000-01-01T00:00:00Z")  # every number free again
    NumberSession.objects.update(expires_at="2000-01-01T00:00:00Z")

    got = assign(client, "v-lifetime-2").json()
    session = NumberSession.objects.get(pk=got["session_id"])
    assert (session.expires_at - session.started_at).total_seconds() == 600


def test_a_pool_key_given_to_another_pool_elsewhere_is_followed(client, pool):
    assign(client)
    other = NumberPoolFactory(key="cost-other", allowed_origins=ORIGIN)
    TrackingNumberFactory(number="+14159990000", kind="pool", pool=other, campaign=other.campaign)
    forget_pool_settings()
    assign(client, "v-keeps-kept")  # kept again, then swapped without a signal
    NumberPool.objects.filter(pk=pool.pk).update(key="cost-old")
    NumberPool.objects.filter(pk=other.pk).update(key="cost")

    got = assign(client, "v-after-swap").json()
    assert got["number"] == "+14159990000"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_first_statement_is_the_health_check_and_a_dropped_connection_is_replaced(client, monkeypatch):
    import psycopg
    from django.db import close_old_connections, connection

    def request(**extra):
        close_old_connections()  # what gunicorn's request_started does (the test client leaves it out)
        return assign(client, **extra)

    pool = NumberPoolFactory(key="cost", allowed_origins=ORIGIN, session_lifetime=1800)
    TrackingNumberFactory(number="+14152000009", kind="pool", pool=pool, campaign=pool.campaign)
    forget_pool_settings()
    first = request().json()
    checks: list[bool] = []
    usable = connection.is_usable
    monkeypatch.setattr(connection, "is_usable", lambda: checks.append(True) or usable())

    assert request().json()["number"] == first["number"]
    assert checks == []  # no SELECT 1 before the request's own statement

    pid = connection.connection.info.backend_pid
    db = connection.settings_dict
    with psycopg.connect(host=db["HOST"], port=db["PORT"] or 5432, user=db["USER"], password=db["PASSWORD"], dbname=db["NAME"],
                         autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [pid])  # as a server restart or an idle timeout would
    again = request()
    assert again.status_code == 200 and again.json()["session_id"] == first["session_id"]
    assert connection.connection.info.backend_pid != pid
    assert checks == [True]  # the failed statement asked whether the connection still works
    assert NumberSession.objects.count() == 1
    forget_pool_settings()
