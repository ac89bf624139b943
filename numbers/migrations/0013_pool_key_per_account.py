"""Issue 30: a pool key is unique in its account, not in the install (two clients may both have a 'spring-sale' pool);
a page tag names another account's pool as ``slug/key``. The (account, key) unique index serves the DNI lookup.
SQLite rebuilds the table: the tracking app's triggers are dropped first and installed again after."""

from django.db import migrations, models

from tracking.db_triggers import sqlite_triggers_again, sqlite_triggers_off


class Migration(migrations.Migration):

    dependencies = [
        ('calltrack', '0003_account_settings'),
        ('numbers', '0012_accounts'),
        ('tracking', '0041_alert_open_per_account'),  # its triggers are dropped and installed again
    ]

    operations = [
        migrations.RunPython(sqlite_triggers_off, sqlite_triggers_again),
        migrations.AddConstraint(
            model_name='numberpool',
            constraint=models.UniqueConstraint(fields=('account', 'key'), name='pool_key_unique_per_account'),
        ),
        migrations.AlterField(
            model_name='numberpool',
            name='key',
            field=models.SlugField(blank=True, db_index=False, help_text='Public key the JavaScript tag uses (data-pool), unique in the account. Leave blank to derive one from the name.', max_length=64),
        ),
        migrations.RunPython(sqlite_triggers_again, sqlite_triggers_off),
    ]
