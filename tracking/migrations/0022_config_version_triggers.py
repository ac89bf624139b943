"""Routing configuration stamps by trigger: ``Campaign.config_version`` is bumped by the database on every write to
a row the cached routing configuration reads (tracking/sql/config_version.*.sql), instead of by each write path
in Python. The cap counters' triggers (migration 0006's) are installed again from their file,
tracking/sql/cap_counters.*.sql, now their current definition (the same triggers)."""

from django.db import migrations

from tracking.db_triggers import triggers_drop, triggers_install


def config_version_install(apps, schema_editor):
    # As this migration installed them (a frozen copy: the current file names columns added later).
    triggers_install(schema_editor, "config_version", as_of="0022")


def config_version_drop(apps, schema_editor):
    triggers_drop(schema_editor, "config_version")


def cap_counters_install(apps, schema_editor):
    triggers_install(schema_editor, "cap_counters")


class Migration(migrations.Migration):

    dependencies = [
        ("tracking", "0021_money_change_labels"),
        ("numbers", "0008_party_labels"),  # the receiving numbers' trigger
    ]

    operations = [
        migrations.RunPython(cap_counters_install, migrations.RunPython.noop),
        migrations.RunPython(config_version_install, config_version_drop),
    ]
