"""The call log filtered by status and sorted by a money column reads its page from an index (migration tracking
0038): at 10,000,000 calls that page was a top-N sort of a million busy calls (3.5 s)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from tests.tracking.factories import CallFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


def _page_query(admin_client, params: dict) -> tuple[str, list]:
    """The changelist's statement for its page of calls (the one ordered by the sort asked for), and the page."""
    with CaptureQueriesContext(connection) as queries:
        response = admin_client.get(reverse("admin:tracking_call_changelist"), params)
    assert response.status_code == 200
    pages = [q["sql"] for q in queries.captured_queries if 'FROM "tracking_call"' in q["sql"] and "LIMIT" in q["sql"]
             and '"tracking_call"."status" = ' in q["sql"] and "ORDER BY" in q["sql"]]
    assert pages, [q["sql"] for q in queries.captured_queries]
    return pages[-1], response


@pytest.mark.parametrize(("sort", "index"), [("-10", "call_status_revenue"), ("10", "call_status_revenue"),
                                             ("-11", "call_status_payout"), ("11", "call_status_payout")])
def test_a_status_filtered_log_sorted_by_money_reads_its_page_from_an_index(admin_client, sort, index):
    for i in range(30):
        CallFactory(status="busy" if i % 3 else "completed", revenue=Decimal(i), payout=Decimal(30 - i))
    sql, response = _page_query(admin_client, {"status__exact": "busy", "o": sort})
    # The rows shown: the busy calls in the money column's order.
    column = "revenue" if index.endswith("revenue") else "payout"
    shown = [getattr(call, column) for call in response.context["cl"].result_list]
    assert len(shown) == 20 and shown == sorted(shown, reverse=sort.startswith("-"))
    # Planned with the table's scans and sorts off: only an index in the page's order can answer without a sort.
    with transaction.atomic(), connection.cursor() as cursor:
        for setting in ("enable_seqscan", "enable_sort", "enable_incremental_sort", "enable_bitmapscan"):
            cursor.execute(f"SET LOCAL {setting} = off")
        cursor.execute(f"EXPLAIN {sql}")
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert index in plan and "Sort" not in plan, plan
