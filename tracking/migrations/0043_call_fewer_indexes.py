"""Issue 26: three of the calls table's indexes served no query, and every call's INSERT (and each UPDATE that is not
HOT) wrote an entry into each of them:

- ``status`` alone, and its ``varchar_pattern_ops`` twin for LIKE: the ``(status, revenue, id)`` and
  ``(status, payout, id)`` indexes start with the status and serve every filter on it;
- the ``varchar_pattern_ops`` twin of the unique ``call_sid`` index, which Django adds for LIKE on a unique text
  column: a CallSid is only ever looked up whole (the unique index).

Dropped CONCURRENTLY on PostgreSQL (the migration is not atomic for that), so the voice path's writes are never
locked out; reversed, they are built again the same way.
"""

from django.db import migrations, models

from tracking.db_indexes import index_concurrently

# The names Django gave them (a hash of the table and column: the same on every install).
DROPPED = [
    index_concurrently("tracking_call_status_f0cebc9a", "tracking_call", "status", drop=True),
    index_concurrently("tracking_call_status_f0cebc9a_like", "tracking_call", "status varchar_pattern_ops", drop=True, postgresql_only=True),
    index_concurrently("tracking_call_call_sid_3c188cc5_like", "tracking_call", "call_sid varchar_pattern_ops", drop=True, postgresql_only=True),
]


class Migration(migrations.Migration):
    atomic = False  # DROP INDEX CONCURRENTLY cannot run in a transaction

    dependencies = [
        ("tracking", "0042_call_account_started"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="call", name="status",
                    field=models.CharField(choices=[("ringing", "Ringing"), ("in_progress", "In progress"), ("completed", "Completed"), ("busy", "Busy"),
                                                    ("no_answer", "No answer"), ("failed", "Failed"), ("canceled", "Canceled"), ("rejected", "Rejected")],
                                           default="ringing", max_length=20),
                ),
            ],
            database_operations=DROPPED,
        ),
    ]
