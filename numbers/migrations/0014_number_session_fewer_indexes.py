"""Issue 26: a DNI assignment updates its number's last_assigned_at and current_session, indexed columns, so the
UPDATE is not HOT: it writes an entry into every index of the numbers table (16 of them), and each new visitor's
session into every index of the sessions table (8). Those no query needs are dropped:

- numbers: ``pool`` alone (the (pool, status, last_assigned_at) index starts with it), ``last_assigned_at`` alone and
  ``status`` alone (every query of them is by pool, on that index or DNI's tracking_pool_lru_idx; a status alone
  is a handful of values over a table of an account's numbers), and Django's LIKE twins of ``status``, ``area_code``
  and ``number`` (nothing searches them by prefix; the admin's search is a contains, which no B-tree serves);
- sessions: ``pool`` alone and ``tracking_number`` alone (the (pool, visitor_id, expires_at), (pool, expires_at) and
  (tracking_number, started_at) indexes start with them), and the LIKE twin of ``visitor_id``.

16 -> 10 indexes on numbers, 8 -> 5 on sessions. Dropped CONCURRENTLY on PostgreSQL (the migration is not atomic for
that), so the tag's writes are never locked out; reversed, they are built again the same way. The names are those
Django gave them (a hash of the table and column: the same on every install).
"""

import django.db.models.deletion
from django.db import migrations, models

from tracking.db_indexes import index_concurrently

N, S = "numbers_trackingnumber", "numbers_numbersession"
DROPPED = [
    index_concurrently("numbers_trackingnumber_pool_id_9d7a65d8", N, "pool_id", drop=True),
    index_concurrently("numbers_trackingnumber_last_assigned_at_6ec630da", N, "last_assigned_at", drop=True),
    index_concurrently("numbers_trackingnumber_status_6d90846e", N, "status", drop=True),
    index_concurrently(
        "numbers_trackingnumber_status_6d90846e_like", N, "status varchar_pattern_ops", drop=True, postgresql_only=True
    ),
    index_concurrently(
        "numbers_trackingnumber_area_code_3bcad021_like", N, "area_code varchar_pattern_ops", drop=True, postgresql_only=True
    ),
    index_concurrently(
        "numbers_trackingnumber_number_6aaf2f02_like", N, "number varchar_pattern_ops", drop=True, postgresql_only=True
    ),
    index_concurrently("numbers_numbersession_pool_id_1f610dfc", S, "pool_id", drop=True),
    index_concurrently("numbers_numbersession_tracking_number_id_0dae3a88", S, "tracking_number_id", drop=True),
    index_concurrently(
        "numbers_numbersession_visitor_id_26c35df8_like", S, "visitor_id varchar_pattern_ops", drop=True, postgresql_only=True
    ),
]


class Migration(migrations.Migration):
    atomic = False  # DROP INDEX CONCURRENTLY cannot run in a transaction

    dependencies = [
        ("numbers", "0013_pool_key_per_account"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="numbersession",
                    name="pool",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="sessions",
                        to="numbers.numberpool",
                    ),
                ),
                migrations.AlterField(
                    model_name="numbersession",
                    name="tracking_number",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        help_text="The number shown; empty when the visitor got the pool's fallback number.",
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="sessions",
                        to="numbers.trackingnumber",
                    ),
                ),
                migrations.AlterField(
                    model_name="trackingnumber",
                    name="last_assigned_at",
                    field=models.DateTimeField(
                        blank=True, help_text="When a pool last showed this number to a visitor.", null=True
                    ),
                ),
                migrations.AlterField(
                    model_name="trackingnumber",
                    name="pool",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        help_text="The pool this number serves web visitors from (pool numbers only).",
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="numbers",
                        to="numbers.numberpool",
                    ),
                ),
                migrations.AlterField(
                    model_name="trackingnumber",
                    name="status",
                    field=models.CharField(
                        choices=[
                            ("active", "Active"),
                            ("quarantined", "Quarantined"),
                            ("porting_in", "Porting in"),
                            ("porting_out", "Porting out"),
                            ("released", "Released"),
                        ],
                        default="active",
                        help_text="Active numbers take calls; quarantined ones wait before reuse; porting out keeps routing until the port completes.",
                        max_length=20,
                    ),
                ),
            ],
            database_operations=DROPPED,
        ),
    ]
