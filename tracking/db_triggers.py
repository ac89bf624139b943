"""The database triggers and functions, kept as readable SQL files: ``tracking/sql/<name>.<vendor>.sql``.

Each file holds the *current* definition of one set of triggers (RapidPro's ``current_triggers.sql``), written so
that installing it again replaces what it installed (PostgreSQL: ``CREATE OR REPLACE FUNCTION``, ``DROP TRIGGER IF
EXISTS`` before each ``CREATE TRIGGER``; SQLite: :func:`triggers_install` drops each trigger it creates first).
Changing one is a diff of its file plus a new migration that calls :func:`triggers_install`; an earlier migration
that read the file keeps a frozen copy of what it installed (a fresh install runs every migration, each against
its own schema). On SQLite, a migration that rebuilds a table (AlterField, AddField with a default) drops that
table's triggers: install the files concerned again after it. ``tests/tracking/test_db_triggers.py`` checks that
every trigger of every file exists once all migrations have run, so a rebuild that loses one fails the tests.

SQLite files separate statements by blank lines (a trigger body has none).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

SQL_DIR = Path(__file__).resolve().parent / "sql"

# The files installed as triggers, each with a PostgreSQL and a SQLite form. (call_rollup_dirty.sql, PostgreSQL
# only, is the rollup trigger's function; money_history.* are installed by migration 0017.)
TRIGGER_FILES = ("cap_counters", "config_version", "money_history")
VENDORS = ("postgresql", "sqlite")

_TRIGGER = re.compile(r"^\s*CREATE\s+TRIGGER\s+(\w+)\b.*?\bON\s+(\w+)", re.IGNORECASE | re.MULTILINE | re.DOTALL)
_FUNCTION = re.compile(r"^\s*CREATE\s+(?:OR\s+REPLACE\s+)?FUNCTION\s+(\w+\([^)]*\))", re.IGNORECASE | re.MULTILINE)


# Frozen copies of a file as an earlier migration installed it (``triggers_install(..., as_of="0022")``): a fresh
# install runs that migration against its own schema, which lacks the columns a later definition names.
FROZEN_DIR = Path(__file__).resolve().parent / "migrations" / "sql"


def sql_text(name: str, vendor: str, *, as_of: str | None = None) -> str:
    """The current SQL of ``name`` for a database vendor ("postgresql", "sqlite"); with ``as_of``, the copy frozen
    for that migration (``tracking/migrations/sql/<as_of>_<name>.<vendor>.sql``)."""
    if as_of is not None:
        return (FROZEN_DIR / f"{as_of}_{name}.{vendor}.sql").read_text()
    return (SQL_DIR / f"{name}.{vendor}.sql").read_text()


def sqlite_statements(text: str) -> list[str]:
    """The statements of a SQLite file: blank-line-separated chunks, their comment lines left out."""
    out = []
    for chunk in text.split("\n\n"):
        statement = "\n".join(line for line in chunk.splitlines() if not line.lstrip().startswith("--")).strip()
        if statement:
            out.append(statement)
    return out


def trigger_names(text: str) -> list[tuple[str, str]]:
    """(trigger, table) for every ``CREATE TRIGGER`` of a file's SQL."""
    out = []
    for statement in re.split(r"\n\s*\n|;\s*\n", text):
        statement = "\n".join(line for line in statement.splitlines() if not line.lstrip().startswith("--"))
        match = _TRIGGER.search(statement)
        if match:
            out.append((match.group(1), match.group(2)))
    return out


def triggers_install(schema_editor: Any, name: str, *, as_of: str | None = None) -> None:
    """Install (or install again) the current ``tracking/sql/<name>.<vendor>.sql`` on the migration's database.
    For a ``RunPython`` of a migration: ``RunPython(lambda apps, se: triggers_install(se, "config_version"))``."""
    vendor = schema_editor.connection.vendor
    if vendor not in VENDORS:
        return
    text = sql_text(name, vendor, as_of=as_of)
    with schema_editor.connection.cursor() as cursor:
        if vendor == "postgresql":
            cursor.execute(text)
            return
        for trigger, _ in trigger_names(text):
            cursor.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        for statement in sqlite_statements(text):
            cursor.execute(statement)


def triggers_drop(schema_editor: Any, name: str) -> None:
    """Drop the triggers (and, on PostgreSQL, the functions) that ``tracking/sql/<name>.<vendor>.sql`` creates."""
    vendor = schema_editor.connection.vendor
    if vendor not in VENDORS:
        return
    text = sql_text(name, vendor)
    with schema_editor.connection.cursor() as cursor:
        for trigger, table in trigger_names(text):
            cursor.execute(f"DROP TRIGGER IF EXISTS {trigger} ON {table}" if vendor == "postgresql" else f"DROP TRIGGER IF EXISTS {trigger}")
        if vendor == "postgresql":
            for function in _FUNCTION.findall(text):
                cursor.execute(f"DROP FUNCTION IF EXISTS {function}")


def triggers_installed(connection: Any) -> set[tuple[str, str]]:
    """(trigger, table) of every trigger on the connection's database (user triggers only)."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT t.tgname, c.relname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
                "WHERE NOT t.tgisinternal AND c.relnamespace = to_regnamespace(current_schema())::oid"
            )
        else:
            cursor.execute("SELECT name, tbl_name FROM sqlite_master WHERE type = 'trigger'")
        return {(name, table) for name, table in cursor.fetchall()}


def sqlite_triggers_off(apps: Any, schema_editor: Any) -> None:
    """For a migration's ``RunPython`` before it rebuilds tables on SQLite: every trigger file's triggers dropped (a
    rebuilt table's name is checked against the other tables' triggers, which may name it). Nothing elsewhere."""
    if schema_editor.connection.vendor == "sqlite":
        for name in TRIGGER_FILES:
            triggers_drop(schema_editor, name)


def sqlite_triggers_again(apps: Any, schema_editor: Any) -> None:
    """After the rebuilds (:func:`sqlite_triggers_off`): every trigger file installed again on SQLite."""
    if schema_editor.connection.vendor == "sqlite":
        for name in TRIGGER_FILES:
            triggers_install(schema_editor, name)
