"""Report rollups per account (issue 30): an account column in the rollups (in their unique key) and in the change
markers, which the trigger now writes with the call's account (tracking/sql/call_rollup_dirty.sql, PostgreSQL only).

The rollups are rebuilt from the calls: this migration empties them and their markers (the selector reads every day
from the calls meanwhile, exactly), and the next scheduled refresh finds its zones empty and rolls up every day again.
"""

from pathlib import Path

import django.db.models.deletion
from django.db import migrations, models

SQL_DIR = Path(__file__).resolve().parent.parent / "sql"
FROZEN_DIR = Path(__file__).resolve().parent / "sql"


def rollups_empty(apps, schema_editor):
    # Rows of the whole install (no account) cannot be split per account: they are computed again from the calls.
    for name in ("CallDayRollup", "CallRollupDirty"):
        apps.get_model("tracking", name).objects.all().delete()


def trigger_install(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute((SQL_DIR / "call_rollup_dirty.sql").read_text())


def trigger_restore(apps, schema_editor):
    rollups_empty(apps, schema_editor)  # before the old unique key (without the account) is put back
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute((FROZEN_DIR / "0023_call_rollup_dirty.sql").read_text())


class Migration(migrations.Migration):

    dependencies = [
        ('calltrack', '0002_accounts'),
        ('tracking', '0039_text_email_forwards'),
    ]

    operations = [
        migrations.RunPython(rollups_empty, rollups_empty),
        migrations.RemoveConstraint(
            model_name='calldayrollup',
            name='call_day_rollup_unique',
        ),
        migrations.AddField(
            model_name='calldayrollup',
            name='account',
            field=models.ForeignKey(blank=True, help_text='The account whose calls are summed; empty: the calls of numbers no account holds.', null=True, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='calltrack.account'),
        ),
        migrations.AddField(
            model_name='callrollupdirty',
            name='account',
            field=models.ForeignKey(blank=True, db_constraint=False, db_index=False, help_text="The changed call's account (empty: a call no account holds).", null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='calltrack.account'),
        ),
        migrations.AlterField(
            model_name='calldayrollup',
            name='tz',
            field=models.CharField(help_text="The time zone the day is read in (TIME_ZONE or an account's zone).", max_length=64),
        ),
        migrations.AddIndex(
            model_name='calldayrollup',
            index=models.Index(fields=['tz', 'dim', 'day'], name='call_day_rollup_tz_dim_day'),
        ),
        migrations.AddConstraint(
            model_name='calldayrollup',
            constraint=models.UniqueConstraint(fields=('tz', 'account', 'dim', 'day', 'key_hash'), name='call_day_rollup_unique'),
        ),
        migrations.RunPython(trigger_install, trigger_restore),
    ]
