"""Issue 26, PostgreSQL only: DNI's pick of a free pool number reads an index by range, so a full pool costs one probe.

The open statement (``numbers.dni.services._open_sql``) takes the least recently shown free number: "free" was
``COALESCE(last_assigned_at <= cutoff, true)`` over tracking_pool_lru_idx (pool_id, last_assigned_at NULLS FIRST, id),
a filter, not a range of the index: in a pool with no free number the scan walked every number the pool holds, for
each tier, on every new visitor (10,000 numbers: about 100 ms). ``numbers_pool_lru_idx`` keys the numbers on
``COALESCE(last_assigned_at, '-infinity')`` (never shown first, the same order), so "free" is the range up to the
cutoff. Built CONCURRENTLY (the tag's writes are never locked out; the migration is not atomic for that), then the old
index is dropped the same way; reversed, the other way round. SQLite keeps tracking_pool_lru_idx (its ORM path).
"""

from django.db import migrations

from tracking.db_indexes import index_concurrently

POOL_NUMBERS = "kind = 'pool' AND status = 'active'"


class Migration(migrations.Migration):
    atomic = False  # CREATE/DROP INDEX CONCURRENTLY cannot run in a transaction

    dependencies = [
        ("numbers", "0014_number_session_fewer_indexes"),
    ]

    operations = [
        index_concurrently(
            "numbers_pool_lru_idx", "numbers_trackingnumber",
            "pool_id, (COALESCE(last_assigned_at, '-infinity'::timestamptz)), id", where=POOL_NUMBERS, postgresql_only=True,
        ),
        index_concurrently(
            "tracking_pool_lru_idx", "numbers_trackingnumber", "pool_id, last_assigned_at ASC NULLS FIRST, id",
            where=POOL_NUMBERS, postgresql_only=True, drop=True,
        ),
    ]
