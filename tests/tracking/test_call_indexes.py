"""The calls table's indexes (PostgreSQL): every call's INSERT writes an entry into each, so none may be redundant.
Migration 0043 dropped the status index (the (status, revenue, id) and (status, payout, id) indexes start with the
status) and Django's LIKE twins of status and call_sid (nothing searches them by prefix)."""

from __future__ import annotations

import pytest
from django.db import connection

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


def call_indexes() -> dict[str, tuple[list[str], bool, bool, str]]:
    """Per index of tracking_call: its key columns (None for an expression), unique, partial, its definition."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT i.relname, ARRAY(SELECT a.attname FROM unnest(x.indkey) WITH ORDINALITY k(n, o) "
            "LEFT JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.n ORDER BY k.o), "
            "x.indisunique, x.indpred IS NOT NULL, pg_get_indexdef(x.indexrelid) "
            "FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid WHERE x.indrelid = 'tracking_call'::regclass")
        return {name: (cols, unique, partial, definition) for name, cols, unique, partial, definition in cursor.fetchall()}


def test_no_index_of_the_calls_is_a_prefix_of_another_or_a_like_twin():
    indexes = call_indexes()
    assert not [name for name, (*_, definition) in indexes.items() if "varchar_pattern_ops" in definition]
    plain = {name: cols for name, (cols, unique, partial, _) in indexes.items() if not unique and not partial and None not in cols}
    redundant = [(name, other) for name, cols in plain.items() for other, (other_cols, _, partial, _) in indexes.items()
                 if other != name and not partial and None not in other_cols and other_cols[:len(cols)] == cols and len(other_cols) > len(cols)]
    assert redundant == []
    assert {"call_status_revenue", "call_status_payout", "tracking_call_call_sid_key"} <= set(indexes)
