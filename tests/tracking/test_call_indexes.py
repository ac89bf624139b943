"""The calls table's indexes (PostgreSQL): every call's INSERT writes an entry into each, so none may be redundant.
Migration 0043 dropped the status index (the (status, revenue, id) and (status, payout, id) indexes start with the
status) and Django's LIKE twins of status and call_sid (nothing searches them by prefix)."""

from __future__ import annotations

import pytest

from tests.pg_plans import indexes_of, redundant_indexes

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


def test_no_index_of_the_calls_is_a_prefix_of_another_or_a_like_twin():
    assert redundant_indexes("tracking_call") == []
    assert {"call_status_revenue", "call_status_payout", "tracking_call_call_sid_key"} <= set(indexes_of("tracking_call"))
