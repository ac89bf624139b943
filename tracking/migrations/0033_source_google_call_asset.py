"""A source may be marked as Google call asset calls (issue 27). SQLite adds the column by rebuilding tracking_source,
which drops its money-history triggers: they are installed again after it."""

from django.db import migrations, models

from tracking.db_triggers import triggers_install


def triggers_again(apps, schema_editor):
    if schema_editor.connection.vendor == "sqlite":
        triggers_install(schema_editor, "money_history")


class Migration(migrations.Migration):

    dependencies = [
        ('tracking', '0032_conversion_destinations'),
    ]

    operations = [
        migrations.RunPython(migrations.RunPython.noop, triggers_again),  # reversed: after the column is removed
        migrations.AddField(
            model_name='source',
            name='google_call_asset',
            field=models.BooleanField(default=False, help_text='Calls from this source come from a Google Ads call asset (call extension) through a Google forwarding number: give the source the tracking number placed in the call asset. Such a call without a click id is sent to Google Ads as a call conversion (caller id and call start time).', verbose_name='Google call asset calls'),
        ),
        migrations.RunPython(triggers_again, migrations.RunPython.noop),
    ]
