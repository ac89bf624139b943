"""The caller's identity on every call (issue 28): the STIR/SHAKEN attestation Twilio reports (StirVerstat) as a
column; the caller name (CallerName) is the call's tag ``caller_name``. SQLite adds the column by rebuilding
tracking_call, which drops its triggers: the cap counters' and the money history's are installed again after it."""

from django.db import migrations, models

from tracking.db_triggers import triggers_install


def triggers_again(apps, schema_editor):
    if schema_editor.connection.vendor == "sqlite":
        for name in ("cap_counters", "money_history"):
            triggers_install(schema_editor, name)


class Migration(migrations.Migration):

    dependencies = [
        ('tracking', '0026_dedupe_count_duplicate_routing'),
    ]

    operations = [
        migrations.RunPython(migrations.RunPython.noop, triggers_again),  # reversed: after the column is removed
        migrations.AddField(
            model_name='call',
            name='attestation',
            field=models.CharField(blank=True, choices=[('', 'Not reported'), ('passed_a', 'Verified, attestation A (full)'), ('passed_b', 'Verified, attestation B (partial)'), ('passed_c', 'Verified, attestation C (gateway)'), ('failed', 'Verification failed'), ('none', 'Not verified (no signature)')], default='', help_text="The caller ID's STIR/SHAKEN verification as the carrier reported it (Twilio's StirVerstat); also the call's tag attestation.", max_length=10, verbose_name='STIR/SHAKEN attestation'),
        ),
        migrations.RunPython(triggers_again, migrations.RunPython.noop),
    ]
