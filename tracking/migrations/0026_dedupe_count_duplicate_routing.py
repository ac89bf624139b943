"""De-dupe with a count (``ConversionRule.dedupe_max_payable``: the most times a caller is paid within the window) and
duplicate-call routing per handler (``Handler.duplicate_days`` / ``duplicate_on``: a caller the handler already answered
or converted within N days goes to the other handlers; ``CampaignHandler.duplicate_days`` overrides the days in one
campaign).

The columns are nullable without a default, so SQLite adds them in place (a NOT NULL column rebuilds the table, which
drops its triggers). The money history triggers are installed again from tracking/sql/money_history.*.sql, which now
record the new columns (the handler's and the conversion rule's terms)."""

from pathlib import Path

import django.core.validators
from django.db import migrations, models

_SQL = Path(__file__).resolve().parent.parent / "sql"


def _sqlite_statements(name: str) -> list[str]:
    text = (_SQL / name).read_text()
    return [s.strip() for s in text.split("\n\n") if s.strip() and not s.lstrip().startswith("--")]


def _triggers_install(schema_editor, pg_file: str, sqlite_file: str) -> None:
    vendor = schema_editor.connection.vendor
    with schema_editor.connection.cursor() as cursor:
        if vendor == "postgresql":
            cursor.execute((_SQL / pg_file).read_text())  # CREATE OR REPLACE, DROP TRIGGER IF EXISTS ... CREATE
        elif vendor == "sqlite":
            for statement in _sqlite_statements(sqlite_file):
                cursor.execute(f"DROP TRIGGER IF EXISTS {statement.split()[2]}")
                cursor.execute(statement)


def triggers_current(apps, schema_editor):
    _triggers_install(schema_editor, "money_history.postgresql.sql", "money_history.sqlite.sql")


def triggers_previous(apps, schema_editor):
    _triggers_install(schema_editor, "money_history_0017.postgresql.sql", "money_history_0017.sqlite.sql")


class Migration(migrations.Migration):

    dependencies = [
        ("tracking", "0025_lookup_tables_multi_key_when_unavailable"),
    ]

    operations = [
        migrations.AddField(
            model_name="conversionrule",
            name="dedupe_max_payable",
            field=models.PositiveIntegerField(
                blank=True, null=True, verbose_name="de-dupe max payable",
                validators=[django.core.validators.MinValueValidator(1), django.core.validators.MaxValueValidator(1000)],
                help_text="With a de-dupe window: the most times a caller is paid within it (e.g. 2: the third call in the window does not pay). Blank: 1.",
            ),
        ),
        migrations.AddField(
            model_name="handler",
            name="duplicate_days",
            field=models.PositiveIntegerField(
                blank=True, null=True, verbose_name="duplicate days",
                validators=[django.core.validators.MinValueValidator(1), django.core.validators.MaxValueValidator(3650)],
                help_text="Restrict duplicates: a caller this handler already had within this many days is sent to the campaign's other handlers instead. Blank: off.",
            ),
        ),
        migrations.AddField(
            model_name="handler",
            name="duplicate_on",
            field=models.CharField(
                blank=True, null=True, max_length=10, verbose_name="duplicate when",
                choices=[("answered", "Answered (took the call)"), ("converted", "Converted (paid for the call)")],
                help_text="What makes a repeat caller a duplicate for this handler: an earlier call it answered, or only one it converted (the revenue side). Blank: answered.",
            ),
        ),
        migrations.AddField(
            model_name="campaignhandler",
            name="duplicate_days",
            field=models.PositiveIntegerField(
                blank=True, null=True, verbose_name="duplicate days", validators=[django.core.validators.MaxValueValidator(3650)],
                help_text="Overrides the handler's duplicate restriction in this campaign: days in which a caller it had goes to the other handlers (blank: the handler's own; 0: not restricted here).",
            ),
        ),
        # Back: the previous triggers go in before the columns go (a trigger naming a dropped column breaks the table).
        migrations.RunPython(triggers_current, triggers_previous),
    ]
