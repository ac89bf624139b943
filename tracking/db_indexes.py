"""Indexes a migration adds to a large, busy table (the calls): built ``CONCURRENTLY`` on PostgreSQL, so the voice
path's writes are never locked out while an index of ten million rows builds (the migration must be
``atomic = False``: CREATE INDEX CONCURRENTLY cannot run in a transaction). Elsewhere a plain CREATE INDEX, or
nothing for an index that only PostgreSQL's plans need."""

from __future__ import annotations

from typing import Any

from django.db import migrations


def index_concurrently(
    name: str, table: str, columns: str, *, postgresql_only: bool = False, drop: bool = False, where: str = ""
) -> migrations.RunPython:
    """The RunPython operation that creates index ``name`` on ``table (columns)`` (partial: ``where``, an SQL condition)
    and drops it when reversed; with ``drop``, the other way round: an index given up, built again when reversed."""
    predicate = f" WHERE {where}" if where else ""

    def create(apps: Any, schema_editor: Any) -> None:
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {name} ON {table} ({columns}){predicate}")
        elif not postgresql_only:
            schema_editor.execute(f"CREATE INDEX IF NOT EXISTS {name} ON {table} ({columns}){predicate}")

    def drop_index(apps: Any, schema_editor: Any) -> None:
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
        elif not postgresql_only:
            schema_editor.execute(f"DROP INDEX IF EXISTS {name}")

    return migrations.RunPython(drop_index, create) if drop else migrations.RunPython(create, drop_index)
