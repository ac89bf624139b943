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
"""

from django.db import migrations

from tracking.db_triggers import sql_text

CAPPED_INDEX = "call_capped_started"


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


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY cannot run in a transaction

    dependencies = [
        ("tracking", "0032_conversion_destinations"),
        ("numbers", "0010_filters_identity_tags"),
    ]

    operations = [migrations.RunPython(install, uninstall), migrations.RunPython(index_create, index_drop)]
