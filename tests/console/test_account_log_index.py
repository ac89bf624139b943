"""An account's call log reads its page from the ``(account_id, started_at, id)`` index (migration tracking 0042): without
it, a client with few calls beside another's millions walks the whole ``started_at`` index to find a page."""

from __future__ import annotations

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from calltrack.models import Account
from tests.tracking.factories import CallFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


def test_a_small_accounts_log_reads_its_page_from_the_account_index(admin_client):
    first = Account.objects.get_or_create(slug="default", defaults={"name": "Default"})[0]
    small = Account.objects.create(name="Small", slug="small")
    for i in range(40):
        CallFactory(account=first if i % 8 else small)
    with CaptureQueriesContext(connection) as queries:
        response = admin_client.get(reverse("admin:tracking_call_changelist"))
    assert response.status_code == 200
    pages = [q["sql"] for q in queries.captured_queries if 'FROM "tracking_call"' in q["sql"] and "LIMIT" in q["sql"]
             and '"tracking_call"."account_id" = ' in q["sql"] and "ORDER BY" in q["sql"]]
    assert pages, [q["sql"] for q in queries.captured_queries]
    # Planned with the table's scans and sorts off: only an index in the page's order, led by the account, answers
    # without a sort and without reading other accounts' rows.
    with transaction.atomic(), connection.cursor() as cursor:
        for setting in ("enable_seqscan", "enable_sort", "enable_incremental_sort", "enable_bitmapscan"):
            cursor.execute(f"SET LOCAL {setting} = off")
        cursor.execute(f"EXPLAIN {pages[-1]}")
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "call_account_started" in plan and "Sort" not in plan, plan
