"""Accounts (issue 30): numbers, pools, blocked callers and port requests belong to an account; what exists goes to
the install's first account. SQLite rebuilds the tables to add the column: the tracking app's triggers (some name
these tables) are dropped first and installed again after."""

import django.db.models.deletion
from django.db import migrations, models

import calltrack.account_fields
from tracking.db_triggers import sqlite_triggers_again, sqlite_triggers_off


class Migration(migrations.Migration):

    dependencies = [
        ('calltrack', '0002_accounts'),
        ('numbers', '0011_texts'),
        ('tracking', '0037_call_money_sort_indexes'),  # its triggers are dropped and installed again
    ]

    operations = [
        migrations.RunPython(sqlite_triggers_off, sqlite_triggers_again),
        migrations.AddField(
            model_name='blockedcaller',
            name='account',
            field=models.ForeignKey(default=calltrack.account_fields.default_account_id, editable=False, help_text='The account it belongs to.', on_delete=django.db.models.deletion.PROTECT, related_name='+', to='calltrack.account'),
        ),
        migrations.AddField(
            model_name='numberpool',
            name='account',
            field=models.ForeignKey(default=calltrack.account_fields.default_account_id, editable=False, help_text='The account it belongs to.', on_delete=django.db.models.deletion.PROTECT, related_name='+', to='calltrack.account'),
        ),
        migrations.AddField(
            model_name='portrequest',
            name='account',
            field=models.ForeignKey(default=calltrack.account_fields.default_account_id, editable=False, help_text='The account it belongs to.', on_delete=django.db.models.deletion.PROTECT, related_name='+', to='calltrack.account'),
        ),
        migrations.AddField(
            model_name='receivingnumber',
            name='account',
            field=models.ForeignKey(default=calltrack.account_fields.default_account_id, editable=False, help_text='The account it belongs to.', on_delete=django.db.models.deletion.PROTECT, related_name='+', to='calltrack.account'),
        ),
        migrations.AddField(
            model_name='trackingnumber',
            name='account',
            field=models.ForeignKey(default=calltrack.account_fields.default_account_id, editable=False, help_text='The account it belongs to.', on_delete=django.db.models.deletion.PROTECT, related_name='+', to='calltrack.account'),
        ),
        migrations.AlterField(
            model_name='blockedcaller',
            name='campaign',
            field=models.ForeignKey(blank=True, help_text='Block only in this campaign; blank blocks in every campaign of the account.', null=True, on_delete=django.db.models.deletion.CASCADE, related_name='blocked_callers', to='tracking.campaign'),
        ),
        migrations.RunPython(sqlite_triggers_again, sqlite_triggers_off),
    ]
