"""The call log's search on PostgreSQL: every comparison a term makes is answered by an index (migrations tracking
0013 and 0035), so a search costs look-ups, not a scan of the calls (bench/report.py at 10,000,000 calls: a word
searched took 83 s before the indexes)."""

from __future__ import annotations

import pytest
from django.db import connection, transaction

from tracking.admin_call_log import call_search_q
from tracking.models import Call

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


def plan(queryset) -> str:
    sql, params = queryset.query.sql_with_params()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")  # a branch no index answers would still need the table's scan
        cursor.execute(f"EXPLAIN {sql}", params)
        return "\n".join(row[0] for row in cursor.fetchall())


@pytest.mark.parametrize("term", ["Springfield", "80202", "visitor-0123456789", "cpc", "CA0123456789abcdef0123456789abcdef"])
def test_a_word_is_looked_up_in_the_indexes_of_each_field_it_is_compared_with(term):
    text = plan(Call.objects.filter(call_search_q(term)).order_by().values("id"))

    assert "Seq Scan" not in text, text
    assert "Index Cond: ((call_sid)::text" in text, text  # either of the CallSid's indexes
    for index in ("call_search_city", "call_search_zip", "call_search_visitor",
                  "call_search_utm_source", "call_search_utm_medium", "call_search_utm_campaign"):
        assert index in text, text


@pytest.mark.parametrize("term", ["555-0138", "(415) 555-0138"])
def test_a_number_or_its_last_digits_is_looked_up_in_the_number_indexes(term):
    text = plan(Call.objects.filter(call_search_q(term)).order_by().values("id"))

    assert "Seq Scan" not in text, text
