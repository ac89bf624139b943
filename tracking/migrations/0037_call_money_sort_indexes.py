"""Issue 26 (performance), PostgreSQL only (elsewhere nothing changes): the call log sorted by a money column over a
status filter (``?status__exact=busy&o=-10``, the failed calls by revenue) was a top-N sort of every call with that
status: 3.5 s at 10,000,000 calls (a million busy ones), 0.24-0.54 s at 1,000,000. An index per money column on
``(status, money, id)``, the changelist's WHERE and ORDER BY (the admin adds ``-id`` for a total order), turns it
into an index-only scan of the page's rows, in either direction (ascending and descending sorts, any page).

The pairs chosen: the status filter is the log's one filter over a large share of the calls that a money sort
makes sense with (the busy, unanswered or rejected calls that were worth something); a source, campaign or
handler filter with a money sort stays a top-N sort of that party's calls (their ``(party, started_at)`` indexes
serve the date orders). Each index costs every call's insert, and a conversion's revenue or payout change, one
more index entry. Built CONCURRENTLY (no lock on the calls' writes; the migration is not atomic for that): on an
existing log of ten million calls each takes one pass over the table.
"""

from django.db import migrations

from tracking.db_indexes import index_concurrently

#: (name, columns): the status filter's rows in the order of one money column, the id breaking ties.
MONEY_SORT_INDEXES = [
    ("call_status_revenue", "status, revenue, id"),
    ("call_status_payout", "status, payout, id"),
]


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY cannot run in a transaction

    dependencies = [
        ("tracking", "0036_texts"),
    ]

    operations = [
        *(index_concurrently(name, "tracking_call", columns, postgresql_only=True) for name, columns in MONEY_SORT_INDEXES),
    ]
