"""Issue 26 (performance), PostgreSQL only (elsewhere nothing changes):

* A new DNI visitor's advisory lock and its "no live session yet" check run inside the statement that opens its
  session (a new visitor's assignment in two statements instead of three): the function ``dni_visitor_first``
  (tracking/sql/dni_visitor_first.postgresql.sql; elsewhere the ORM path serializes writers with BEGIN IMMEDIATE).
* ``call_capped_started``: the calls whose routing decision skipped a handler at a cap (about 1 in 100), by time. The
  dashboard's capped-handler alert and the rollup of a day find them by a text match on the decision
  (``tracking.report_figures.capped_counts``), which scanned the day's (or the period's) every decision: at
  10,000,000 calls a changed day's 111,000 decisions cast to text on each dashboard view. Built CONCURRENTLY (no
  lock on the calls' writes; the migration is not atomic for that): on an existing log of ten million calls it takes
  one pass over the table.
* The call log's search by a word (a city, a zip code, a visitor id, a UTM source / medium / campaign value:
  ``tracking.admin_call_log.call_search_q``) compared each with every call: at 10,000,000 calls a search for a word
  took 60 s plus 23 s for the bounded count (a scan of the table each). One index per comparison, on the expression
  the ORM writes (``UPPER(col)`` for ``iexact``), so each branch of the search's OR is an index look-up (a bitmap OR).
  Each costs every call's insert one more index entry; the searchable values are short.
"""

from django.db import migrations

from tracking.db_triggers import sql_text

CAPPED_INDEX = "call_capped_started"
#: (name, indexed expression): each the left-hand side of one comparison of call_search_q, as the ORM writes it.
SEARCH_INDEXES = [
    ("call_search_city", "UPPER((caller_city)::text)"),
    ("call_search_zip", "caller_zip"),
    ("call_search_visitor", "visitor_id"),
    ("call_search_utm_source", "UPPER((marketing_data ->> 'utm_source'))"),
    ("call_search_utm_medium", "UPPER((marketing_data ->> 'utm_medium'))"),
    ("call_search_utm_campaign", "UPPER((marketing_data ->> 'utm_campaign'))"),
]


def install(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(sql_text("dni_visitor_first", "postgresql"))


def uninstall(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP FUNCTION IF EXISTS dni_visitor_first(bigint, boolean, bigint, text, timestamptz, text)")


def index_create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        # The predicate is the text match capped_counts makes, word for word, so the planner can use the index.
        schema_editor.execute(
            f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {CAPPED_INDEX} ON tracking_call (started_at)"
            " WHERE ((decision)::text LIKE '%%\"capped\"%%')"
        )


def index_drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {CAPPED_INDEX}")


def search_indexes_create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name, expression in SEARCH_INDEXES:
        schema_editor.execute(f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {name} ON tracking_call (({expression}))")
    # The planner knows nothing of an expression until the table is analysed (see migration 0013).
    schema_editor.execute("ANALYZE tracking_call")


def search_indexes_drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for name, _ in SEARCH_INDEXES:
            schema_editor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY cannot run in a transaction

    dependencies = [
        ("tracking", "0034_webhook_delivery_lease"),
        ("numbers", "0010_filters_identity_tags"),
    ]

    operations = [
        migrations.RunPython(install, uninstall),
        migrations.RunPython(index_create, index_drop),
        migrations.RunPython(search_indexes_create, search_indexes_drop),
    ]
