"""Issue 30: an account's call log reads its page from an ``(account_id, started_at, id)`` index. The log's query is
``WHERE account_id = %s ORDER BY started_at DESC, id DESC LIMIT 51``: without this index PostgreSQL walks the
``started_at`` index backwards, filtering on the account, until it has a page, which for a client with few calls
beside another's ten million is the whole index. Each call's INSERT writes one more index entry.

Built CONCURRENTLY on PostgreSQL (no lock on the calls' writes while it builds; the migration is not atomic for
that): on an existing log of ten million calls it takes one pass over the table.
"""

from django.db import migrations, models

from tracking.db_indexes import index_concurrently

NAME = "call_account_started"


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY cannot run in a transaction

    dependencies = [
        ("tracking", "0041_alert_open_per_account"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AddIndex(model_name="call", index=models.Index(fields=["account", "started_at", "id"], name=NAME)),
            ],
            database_operations=[index_concurrently(NAME, "tracking_call", "account_id, started_at, id")],
        ),
    ]
