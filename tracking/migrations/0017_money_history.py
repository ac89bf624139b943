"""The money audit trail: tracking.MoneyChange and the triggers that fill it, as they were then
(tracking/sql/money_history_0017.*.sql; the current ones, tracking/sql/money_history.*.sql, are installed by a later
migration: a trigger naming a column a later migration adds would break this one on a fresh database)."""

from pathlib import Path

from django.db import migrations, models

_SQL = Path(__file__).resolve().parent.parent / "sql"

_PG_DROP = """
DROP TRIGGER IF EXISTS tracking_money_history_call ON tracking_call;
DROP TRIGGER IF EXISTS tracking_money_history_handler ON tracking_handler;
DROP TRIGGER IF EXISTS tracking_money_history_source ON tracking_source;
DROP TRIGGER IF EXISTS tracking_money_history_campaignhandler ON tracking_campaignhandler;
DROP TRIGGER IF EXISTS tracking_money_history_conversionrule ON tracking_conversionrule;
DROP TRIGGER IF EXISTS tracking_money_history_webhook ON tracking_webhook;
DROP FUNCTION IF EXISTS tracking_money_history_call();
DROP FUNCTION IF EXISTS tracking_money_history_terms();
DROP FUNCTION IF EXISTS tracking_money_history_insert(text, bigint, bigint, text, jsonb, jsonb, text);
"""


def _sqlite_statements() -> list[str]:
    text = (_SQL / "money_history_0017.sqlite.sql").read_text()
    return [s.strip() for s in text.split("\n\n") if s.strip() and not s.lstrip().startswith("--")]


def triggers_create(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    with schema_editor.connection.cursor() as cursor:
        if vendor == "postgresql":
            cursor.execute((_SQL / "money_history_0017.postgresql.sql").read_text())
        elif vendor == "sqlite":
            for statement in _sqlite_statements():
                cursor.execute(statement)


def triggers_drop(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    with schema_editor.connection.cursor() as cursor:
        if vendor == "postgresql":
            cursor.execute(_PG_DROP)
        elif vendor == "sqlite":
            for statement in _sqlite_statements():
                name = statement.split()[2]
                cursor.execute(f"DROP TRIGGER IF EXISTS {name}")


class Migration(migrations.Migration):

    dependencies = [
        ("tracking", "0016_call_is_test"),
    ]

    operations = [
        migrations.CreateModel(
            name="MoneyChange",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("table", models.CharField(help_text="Which kind of row changed: call, handler, source, webhook, ...", max_length=20)),
                ("object_id", models.BigIntegerField(help_text="The changed row's id (it may since have been deleted).")),
                ("handler_id", models.BigIntegerField(blank=True, help_text="The handler the row concerns, if any.", null=True)),
                ("op", models.CharField(help_text="insert, update or delete.", max_length=6)),
                ("at", models.DateTimeField(help_text="When the writing transaction started (database clock).")),
                ("origin", models.CharField(blank=True, choices=[("admin", "Admin"), ("api", "API"), ("postback", "Postback"), ("rule", "Conversion rule (status callback)"), ("task", "Task"), ("command", "Command"), ("", "Database (no application context: a shell, a SQL console)")], max_length=20)),
                ("user_id", models.IntegerField(blank=True, help_text="The logged-in user who made the change, if any.", null=True)),
                ("actor", models.CharField(blank=True, help_text="Who, in words: a username, a handler's postback.", max_length=200)),
                ("before", models.JSONField(blank=True, help_text="The recorded columns before (none for an insert).", null=True)),
                ("after", models.JSONField(blank=True, help_text="The recorded columns after (none for a delete).", null=True)),
            ],
            options={
                "verbose_name": "money change",
                "ordering": ["-at", "-id"],
                "indexes": [
                    models.Index(fields=["table", "object_id", "at"], name="moneychange_object"),
                    models.Index(fields=["handler_id", "at"], name="moneychange_handler"),
                ],
            },
        ),
        migrations.RunPython(triggers_create, triggers_drop),
    ]
