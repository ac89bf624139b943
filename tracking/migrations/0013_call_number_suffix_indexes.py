"""Indexes for the call log's search by the end of a number ("555-0138", or a whole number that is not a valid
one): the numbers reversed, so that "ends with" is a prefix an index answers (PostgreSQL; SQLite scans)."""

from django.db import migrations

INDEXES = [("call_caller_number_rev", "caller_number"), ("call_called_number_rev", "called_number")]


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name, column in INDEXES:
        schema_editor.execute(f'CREATE INDEX IF NOT EXISTS {name} ON tracking_call (reverse("{column}") text_pattern_ops)')
    # The planner knows nothing of an expression until the table is analysed: without it a search by the end of a
    # number is planned as a walk of the whole log by time.
    schema_editor.execute("ANALYZE tracking_call")


def drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name, _ in INDEXES:
        schema_editor.execute(f"DROP INDEX IF EXISTS {name}")


class Migration(migrations.Migration):
    dependencies = [("tracking", "0012_call_queues")]
    operations = [migrations.RunPython(create, drop)]
