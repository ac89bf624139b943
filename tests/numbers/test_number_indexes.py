"""The DNI tables' indexes (PostgreSQL): each assignment updates its number's indexed columns (not a HOT update: an
entry into every index of the numbers table) and inserts a session (an entry into every index of the sessions table),
so none may be redundant. Migration numbers 0014 dropped the foreign keys' own indexes that a composite index starts
with, the single-column indexes no query uses, and Django's LIKE twins."""

from __future__ import annotations

import pytest

from tests.pg_plans import indexes_of, redundant_indexes

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


@pytest.mark.parametrize("table", ["numbers_trackingnumber", "numbers_numbersession"])
def test_no_index_of_the_dni_tables_is_a_prefix_of_another_or_a_like_twin(table):
    assert redundant_indexes(table) == []


def test_the_dni_tables_keep_the_indexes_their_queries_use():
    numbers, sessions = indexes_of("numbers_trackingnumber"), indexes_of("numbers_numbersession")
    assert len(numbers) == 10 and len(sessions) == 5, (sorted(numbers), sorted(sessions))
    # DNI's least recently assigned walk, the pool's numbers by status, a call's tracking number, a session's holder.
    assert {"numbers_pool_lru_idx", "numbers_tra_pool_id_650d14_idx", "numbers_trackingnumber_number_key",
            "numbers_trackingnumber_current_session_id_39d6814d"} <= set(numbers)
    assert [cols for cols, *_ in sessions.values()].count(["pool_id", "visitor_id", "expires_at"]) == 1
    assert ["last_assigned_at"] not in [cols for cols, *_ in numbers.values()]
