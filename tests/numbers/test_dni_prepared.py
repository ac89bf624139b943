"""PostgreSQL: the DNI hot path's fixed statements are prepared once per connection; the opt-in async commit stays local."""

from __future__ import annotations

from datetime import timedelta

import psycopg
import pytest
from django.db import connection
from django.utils import timezone

from calltrack import fastdb
from calltrack.numbers.dni.services import Visit, number_assign
from tests.numbers.factories import NumberPoolFactory, TrackingNumberFactory

# transaction=True: autocommit, as under gunicorn, so each hot-path statement is its own transaction.
pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def pool():
    pool = NumberPoolFactory(key="prep", session_lifetime=1800)
    for i in range(3):
        TrackingNumberFactory(number=f"+1415300{i:04d}", kind="pool", pool=pool, campaign=pool.campaign)
    return pool


def prepared_statements() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        return [row[0] for row in cursor.fetchall()]


def assign(client, visitor: str) -> dict:
    response = client.post(
        "/dni/v1/assign", {"pool": "prep", "visitor_id": visitor}, content_type="application/json", HTTP_ORIGIN="http://testserver"
    )
    assert response.status_code == 200, response.content
    return response.json()


def test_the_pool_lookup_and_the_returning_visitors_statement_are_prepared_once_per_connection(client, pool):
    first = assign(client, "visitor-p1")
    for _ in range(3):
        assert assign(client, "visitor-p1")["number"] == first["number"]

    statements = prepared_statements()
    assert sum("FROM numbers_numberpool WHERE key = $1" in s for s in statements) == 1
    assert sum(s.lstrip().startswith("WITH ok AS") for s in statements) == 1  # prepared once, reused since


def test_a_new_visitors_open_with_its_lock_is_prepared_once_per_connection(client, pool):
    numbers = {assign(client, f"visitor-n{i}")["number"] for i in range(3)}
    overflow = assign(client, "visitor-n3")

    assert len(numbers) == 3 and overflow["overflow"] is True  # the same statement opens an overflow
    statements = prepared_statements()
    assert not any("pg_advisory_xact_lock(" in s for s in statements)  # taken inside the open (dni_visitor_first)
    assert sum(s.startswith("WITH g0 AS(SELECT dni_visitor_first(") for s in statements) == 1


def test_without_prepared_statements_the_hot_path_binds_on_the_client(client, pool, settings):
    settings.CALLTRACK_PREPARED_STATEMENTS = False
    first = assign(client, "visitor-p2")
    assert assign(client, "visitor-p2")["number"] == first["number"]

    assert prepared_statements() == []
    with fastdb.fixed_cursor() as cursor:
        assert isinstance(cursor.cursor, psycopg.ClientCursor)


def test_the_async_commit_relaxes_only_the_assignments_own_transaction(pool, settings):
    settings.CALLTRACK_DNI_ASYNC_COMMIT = True
    now = timezone.now()
    first = number_assign(pool=pool, visit=Visit(visitor_id="visitor-p3"), now=now)
    statements: list[tuple[str, object]] = []
    with connection.execute_wrapper(lambda execute, sql, params, many, context: (statements.append((sql, params)), execute(sql, params, many, context))[1]):
        # Stale enough to push the hold forward: the statement writes and commits.
        again = number_assign(pool=pool, visit=Visit(visitor_id="visitor-p3"), now=now + timedelta(minutes=5))

    assert (again.number, again.expires_at) == (first.number, now + timedelta(minutes=5, seconds=1800))
    assert len(statements) == 1 and statements[0][1]["relax"] is True
    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        assert cursor.fetchone()[0] == "on"  # set_config(..., true) ended with the statement's transaction


def test_the_query_log_shows_prepared_statements_with_their_values(client, pool):
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        assign(client, "visitor-p4")
    pool_lookup = [q["sql"] for q in captured.captured_queries if "FROM numbers_numberpool" in (q["sql"] or "")]
    assert pool_lookup and "'prep'" in pool_lookup[0]  # the key, not None or a placeholder


def test_the_open_statement_stays_short_enough_for_psycopg_to_parse_it_once():
    """psycopg parses the placeholders of a statement longer than 4096 characters or with more than 50 parameters on
    every execution (``MAX_CACHED_STATEMENT_LENGTH``): more CPU than the rest of a new visitor's request."""
    from psycopg import _queries

    from calltrack.numbers.dni.matching import candidate_tiers
    from calltrack.numbers.dni.services import _open_sql
    from calltrack.numbers.models import NumberPool

    match = NumberPool(number_type="match", match_area_code=True)
    longest = candidate_tiers(pool=match, destination="+14155550100")  # area code, the rest of its state, any local
    assert len(longest) == 3
    for first_visit in (True, False):
        sql = _open_sql(longest, True, first_visit)
        assert len(sql.encode()) <= _queries.MAX_CACHED_STATEMENT_LENGTH
        assert sql.count("%(") - sql.count("%(p)s") - sql.count("%(n)s") < _queries.MAX_CACHED_STATEMENT_PARAMS
