"""Accounts (issue 30): every party, number, call and text belongs to one account; an existing install's rows all go
to its first account ("Default", made by calltrack 0002). A source id, a campaign id and a contact's number are unique
per account now. SQLite adds the columns by rebuilding the tables, which drops their triggers: they are installed
again after it.

On PostgreSQL each column is added with a constant default (no table rewrite), then checked as a foreign key: on a
large call table, expect one scan of it."""

import django.db.models.deletion
from django.db import migrations, models

import calltrack.account_fields
import calltrack.fields
from tracking.db_triggers import sqlite_triggers_again, sqlite_triggers_off


class Migration(migrations.Migration):

    dependencies = [
        ('calltrack', '0002_accounts'),
        ('numbers', '0012_accounts'),
        ('tracking', '0037_call_money_sort_indexes'),
    ]

    operations = [
        migrations.RunPython(sqlite_triggers_off, sqlite_triggers_again),  # reversed: after the columns are removed
        migrations.AddField(
            model_name='alert',
            name='account',
            field=models.ForeignKey(default=calltrack.account_fields.default_account_id, editable=False, help_text='The account it belongs to.', on_delete=django.db.models.deletion.PROTECT, related_name='+', to='calltrack.account'),
        ),
        migrations.AddField(
            model_name='alertrecipient',
            name='account',
            field=models.ForeignKey(default=calltrack.account_fields.default_account_id, editable=False, help_text='The account it belongs to.', on_delete=django.db.models.deletion.PROTECT, related_name='+', to='calltrack.account'),
        ),
        migrations.AddField(
            model_name='call',
            name='account',
            field=models.ForeignKey(db_index=False, default=calltrack.account_fields.default_account_id, editable=False, help_text='The account it belongs to.', null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='calltrack.account'),
        ),
        migrations.AddField(
            model_name='campaign',
            name='account',
            field=models.ForeignKey(default=calltrack.account_fields.default_account_id, editable=False, help_text='The account it belongs to.', on_delete=django.db.models.deletion.PROTECT, related_name='+', to='calltrack.account'),
        ),
        migrations.AddField(
            model_name='collaborator',
            name='account',
            field=models.ForeignKey(default=calltrack.account_fields.default_account_id, editable=False, help_text='The account it belongs to.', on_delete=django.db.models.deletion.PROTECT, related_name='+', to='calltrack.account'),
        ),
        migrations.AddField(
            model_name='contact',
            name='account',
            field=models.ForeignKey(default=calltrack.account_fields.default_account_id, editable=False, help_text='The account it belongs to.', on_delete=django.db.models.deletion.PROTECT, related_name='+', to='calltrack.account'),
        ),
        migrations.AddField(
            model_name='fraudmonitor',
            name='account',
            field=models.ForeignKey(default=calltrack.account_fields.default_account_id, editable=False, help_text='The account it belongs to.', on_delete=django.db.models.deletion.PROTECT, related_name='+', to='calltrack.account'),
        ),
        migrations.AddField(
            model_name='handler',
            name='account',
            field=models.ForeignKey(default=calltrack.account_fields.default_account_id, editable=False, help_text='The account it belongs to.', on_delete=django.db.models.deletion.PROTECT, related_name='+', to='calltrack.account'),
        ),
        migrations.AddField(
            model_name='source',
            name='account',
            field=models.ForeignKey(default=calltrack.account_fields.default_account_id, editable=False, help_text='The account it belongs to.', on_delete=django.db.models.deletion.PROTECT, related_name='+', to='calltrack.account'),
        ),
        migrations.AddField(
            model_name='tagginghours',
            name='account',
            field=models.ForeignKey(default=calltrack.account_fields.default_account_id, editable=False, help_text='The account it belongs to.', on_delete=django.db.models.deletion.PROTECT, related_name='+', to='calltrack.account'),
        ),
        migrations.AddField(
            model_name='textoptout',
            name='account',
            field=models.ForeignKey(default=calltrack.account_fields.default_account_id, editable=False, help_text='The account it belongs to.', on_delete=django.db.models.deletion.PROTECT, related_name='+', to='calltrack.account'),
        ),
        migrations.AddField(
            model_name='textmessage',
            name='account',
            field=models.ForeignKey(db_index=False, default=calltrack.account_fields.default_account_id, editable=False, help_text='The account it belongs to.', null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='calltrack.account'),
        ),
        migrations.AlterField(
            model_name='campaign',
            name='campaign_id',
            field=models.SlugField(blank=True, help_text='Public identifier for other systems. Leave blank to have one generated.', max_length=64, verbose_name='campaign ID'),
        ),
        migrations.AlterField(
            model_name='contact',
            name='phone_number',
            field=calltrack.fields.PhoneNumberField(help_text="The caller's number (one contact per number and account); national formats are read in the default region."),
        ),
        migrations.AlterField(
            model_name='source',
            name='source_id',
            field=models.SlugField(blank=True, help_text="Public identifier (unique in its account) that handler collaborators and postbacks see (e.g. 'adwords', 'facebook'). Leave blank to derive one from the name. Do not put sensitive information here.", max_length=64, verbose_name='source ID'),
        ),
        migrations.AddConstraint(
            model_name='campaign',
            constraint=models.UniqueConstraint(fields=('account', 'campaign_id'), name='campaign_id_unique_per_account'),
        ),
        migrations.AddConstraint(
            model_name='contact',
            constraint=models.UniqueConstraint(fields=('account', 'phone_number'), name='contact_unique_per_account'),
        ),
        migrations.AddConstraint(
            model_name='source',
            constraint=models.UniqueConstraint(fields=('account', 'source_id'), name='source_id_unique_per_account'),
        ),
        migrations.RunPython(sqlite_triggers_again, sqlite_triggers_off),
    ]
