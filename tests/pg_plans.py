"""PostgreSQL plans of what a piece of code runs, and a table's indexes, for tests that a hot statement's plan stays an
index read and that a hot table carries no index a write would maintain for nothing (issue 26)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from django.db import connection, transaction


def sql(statement: str, params: list | None = None) -> None:
    with connection.cursor() as cursor:
        cursor.execute(statement, params)


def plans_of(run) -> list[str]:
    """The plans (EXPLAIN ANALYZE with buffers) of every statement ``run`` executes, nested statements included."""
    try:
        with transaction.atomic():
            sql("LOAD 'auto_explain'")
    except Exception as exc:  # noqa: BLE001 - a server without the module or the privilege
        pytest.skip(f"auto_explain unavailable: {exc}")
    settings = {"auto_explain.log_min_duration": "0", "auto_explain.log_nested_statements": "on", "auto_explain.log_analyze": "on",
                "auto_explain.log_buffers": "on", "auto_explain.log_timing": "off", "client_min_messages": "log"}
    plans: list[str] = []

    def keep(diagnostic) -> None:
        if "plan:" in (diagnostic.message_primary or ""):
            plans.append(diagnostic.message_primary)

    raw = connection.connection
    raw.add_notice_handler(keep)
    try:
        for name, value in settings.items():
            sql(f"SET {name} = {value}")
        run()
    finally:
        for name in settings:
            sql(f"RESET {name}")
        raw.remove_notice_handler(keep)
    return plans


@contextmanager
def generic_plans() -> Iterator[None]:
    """What runs inside is planned as a connection keeps a prepared statement: PostgreSQL's generic plan, forced."""
    sql("SET plan_cache_mode = force_generic_plan")
    try:
        yield
    finally:
        sql("RESET plan_cache_mode")


def shared_buffers(plan: str) -> int:
    """The buffers a plan's top node touched (hit + read)."""
    found = re.search(r"Buffers: shared ((?:\w+=\d+ ?)+)", plan)
    return sum(int(n) for n in re.findall(r"=(\d+)", found.group(1))) if found else 0


def indexes_of(table: str) -> dict[str, tuple[list[str | None], bool, bool, str]]:
    """Per index of ``table``: its key columns (None for an expression), unique, partial, its definition."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT i.relname, ARRAY(SELECT a.attname FROM unnest(x.indkey) WITH ORDINALITY k(n, o) "
            "LEFT JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.n ORDER BY k.o), "
            "x.indisunique, x.indpred IS NOT NULL, pg_get_indexdef(x.indexrelid) "
            "FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid WHERE x.indrelid = %s::regclass", [table])
        return {name: (cols, unique, partial, definition) for name, cols, unique, partial, definition in cursor.fetchall()}


def redundant_indexes(table: str) -> list[tuple[str, str]]:
    """The LIKE twins of ``table``'s indexes (as (name, 'LIKE')) and each plain index whose columns begin another's
    (as (name, the other))."""
    indexes = indexes_of(table)
    twins = [(name, "LIKE") for name, (*_, definition) in indexes.items() if "varchar_pattern_ops" in definition]
    plain = {name: cols for name, (cols, unique, partial, _) in indexes.items() if not unique and not partial and None not in cols}
    prefixes = [(name, other) for name, cols in plain.items() for other, (other_cols, _, partial, _) in indexes.items()
                if other != name and not partial and None not in other_cols and other_cols[:len(cols)] == cols
                and len(other_cols) > len(cols)]
    return twins + prefixes
