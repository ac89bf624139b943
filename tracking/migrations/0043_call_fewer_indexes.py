"""Issue 26: three of the calls table's indexes served no query, and every call's INSERT (and each UPDATE that is not
HOT) wrote an entry into each of them:

- ``status`` alone, and its ``varchar_pattern_ops`` twin for LIKE: the ``(status, revenue, id)`` and
  ``(status, payout, id)`` indexes start with the status and serve every filter on it;
- the ``varchar_pattern_ops`` twin of the unique ``call_sid`` index, which Django adds for LIKE on a unique text
  column: a CallSid is only ever looked up whole (the unique index).

Dropped CONCURRENTLY on PostgreSQL (the migration is not atomic for that), so the voice path's writes are never
locked out; reversed, they are built again the same way.
"""

from typing import Any

from django.db import migrations, models


def _names(apps: Any, schema_editor: Any) -> list[tuple[str, str]]:
    """(index name, its definition) of the indexes this migration drops, as Django named them when it made them."""
    table = apps.get_model("tracking", "Call")._meta.db_table
    name = schema_editor._create_index_name
    found = [(name(table, ["status"], suffix=""), "(status)")]
    if schema_editor.connection.vendor == "postgresql":
        found += [(name(table, ["status"], suffix="_like"), "(status varchar_pattern_ops)"),
                  (name(table, ["call_sid"], suffix="_like"), "(call_sid varchar_pattern_ops)")]
    return found


def drop(apps: Any, schema_editor: Any) -> None:
    concurrently = "CONCURRENTLY " if schema_editor.connection.vendor == "postgresql" else ""
    for index, _ in _names(apps, schema_editor):
        schema_editor.execute(f"DROP INDEX {concurrently}IF EXISTS {schema_editor.quote_name(index)}")


def build(apps: Any, schema_editor: Any) -> None:
    table = apps.get_model("tracking", "Call")._meta.db_table
    concurrently = "CONCURRENTLY " if schema_editor.connection.vendor == "postgresql" else ""
    for index, definition in _names(apps, schema_editor):
        schema_editor.execute(f"CREATE INDEX {concurrently}IF NOT EXISTS {schema_editor.quote_name(index)} ON {table} {definition}")


class Migration(migrations.Migration):
    atomic = False  # DROP INDEX CONCURRENTLY cannot run in a transaction

    dependencies = [
        ("tracking", "0042_call_account_started"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="call", name="status",
                    field=models.CharField(choices=[("ringing", "Ringing"), ("in_progress", "In progress"), ("completed", "Completed"), ("busy", "Busy"),
                                                    ("no_answer", "No answer"), ("failed", "Failed"), ("canceled", "Canceled"), ("rejected", "Rejected")],
                                           default="ringing", max_length=20),
                ),
            ],
            database_operations=[migrations.RunPython(drop, build)],
        ),
    ]
