"""The cap counters' pending deltas read in one grouped index read (issue 26): the delta table's index covers
(handler_id, counts, at) and the delta, and on PostgreSQL ``tracking_capdelta_pending`` (tracking/sql/
cap_counters_read.postgresql.sql) reads them with its plan pinned to that index, whatever the table's statistics
were when a connection prepared the counter statement."""

from django.db import migrations, models

from tracking.db_triggers import sql_text


def install(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        with schema_editor.connection.cursor() as cursor:
            cursor.execute(sql_text("cap_counters_read", "postgresql"))


def uninstall(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        with schema_editor.connection.cursor() as cursor:
            cursor.execute("DROP FUNCTION IF EXISTS tracking_capdelta_pending(bigint[], text[], timestamptz[], timestamptz[], timestamptz[])")


class Migration(migrations.Migration):

    dependencies = [
        ('tracking', '0029_caller_lookup'),
    ]

    operations = [
        migrations.RemoveIndex(model_name='capdelta', name='capdelta_handler_counts'),
        migrations.AddIndex(
            model_name='capdelta',
            index=models.Index(fields=['handler_id', 'counts', 'at'], include=('delta',), name='capdelta_handler_counts_at'),
        ),
        migrations.RunPython(install, uninstall),
    ]
