"""Drop the single-column indexes on a call's caller, campaign, source and handler and on an attempt's handler: the
(column, started_at) and (handler, holds_slot) indexes answer every look-up by those columns, and each index
costs every call's insert and its four updates a write.

Only the indexes are dropped (DROP INDEX IF EXISTS, on both databases): an AlterField would also drop and add the
foreign keys again, which checks every row of a large table under lock.
"""

import django.db.models.deletion
from django.db import migrations, models

# (index, table, column, PostgreSQL operator class or "") as Django named them when it made them.
INDEXES = [
    ("tracking_call_caller_number_ba02fbd9", "tracking_call", "caller_number", ""),
    ("tracking_call_caller_number_ba02fbd9_like", "tracking_call", "caller_number", "varchar_pattern_ops"),
    ("tracking_call_campaign_id_d4d8efa5", "tracking_call", "campaign_id", ""),
    ("tracking_call_handler_id_3f397b51", "tracking_call", "handler_id", ""),
    ("tracking_call_source_id_56aad3cc", "tracking_call", "source_id", ""),
    ("tracking_callattempt_handler_id_fa8a43ee", "tracking_callattempt", "handler_id", ""),
]


def indexes_drop(apps, schema_editor):
    for name, _table, _column, _opclass in INDEXES:
        schema_editor.execute(f'DROP INDEX IF EXISTS "{name}"')


def indexes_create(apps, schema_editor):
    for name, table, column, opclass in INDEXES:
        if opclass and schema_editor.connection.vendor != "postgresql":
            continue
        schema_editor.execute(f'CREATE INDEX IF NOT EXISTS "{name}" ON "{table}" ("{column}"{" " + opclass if opclass else ""})')


class Migration(migrations.Migration):

    dependencies = [
        ('tracking', '0013_call_number_suffix_indexes'),
    ]

    operations = [migrations.SeparateDatabaseAndState(database_operations=[migrations.RunPython(indexes_drop, indexes_create)], state_operations=[
        migrations.AlterField(
            model_name='call',
            name='caller_number',
            field=models.CharField(help_text="E.164 when it could be read; as sent otherwise (e.g. 'anonymous').", max_length=32),
        ),
        migrations.AlterField(
            model_name='call',
            name='campaign',
            field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='calls', to='tracking.campaign'),
        ),
        migrations.AlterField(
            model_name='call',
            name='handler',
            field=models.ForeignKey(blank=True, db_index=False, help_text='The handler who answered (or was last dialled).', null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='calls', to='tracking.handler'),
        ),
        migrations.AlterField(
            model_name='call',
            name='source',
            field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='calls', to='tracking.source'),
        ),
        migrations.AlterField(
            model_name='callattempt',
            name='handler',
            field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='attempts', to='tracking.handler'),
        ),
    ])]
