"""The calls whose routing skipped a handler at a cap have their own partial index (migration tracking 0035): the
capped-handler alert and a day's rollup read those calls through it instead of casting every decision of the period
to text (bench/report.py at 10,000,000 calls: a changed day's 111,000 decisions on each dashboard view)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from tests.tracking.factories import CallFactory, HandlerFactory
from tracking.models import Call
from tracking.report_figures import capped_counts, capped_decisions

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


def test_the_capped_calls_of_a_period_are_found_through_their_partial_index():
    handler = HandlerFactory()
    now = timezone.now()
    for i in range(40):
        skipped = [{"handler_id": handler.pk, "reason": "capped", "detail": ""}] if i % 10 == 0 else []
        CallFactory(started_at=now - timedelta(hours=i), decision={"skipped": skipped})
    calls = Call.objects.filter(started_at__gte=now - timedelta(days=1), started_at__lt=now + timedelta(minutes=1))

    assert capped_counts(calls) == {handler.pk: 3}  # the calls of hours 0, 10 and 20
    # The statement capped_counts sends, planned with the table's scans off: only an index whose predicate is the
    # statement's own text match (and its range on started_at) can answer it.
    sql, params = capped_decisions(calls).query.sql_with_params()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(f"EXPLAIN {sql}", params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "call_capped_started" in plan, plan
