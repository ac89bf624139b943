"""The database triggers kept as files (tracking/sql/, tracking.db_triggers): every trigger each file defines exists
once all migrations have run, on the database the tests run on (PostgreSQL or SQLite). On SQLite a migration that
rebuilds a table drops its triggers; this is where a migration that forgets to install them again is caught."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from django.db import connection

from tracking import db_triggers

pytestmark = pytest.mark.django_db


def _expected(name: str) -> set[tuple[str, str]]:
    return set(db_triggers.trigger_names(db_triggers.sql_text(name, connection.vendor)))


@pytest.mark.parametrize("name", db_triggers.TRIGGER_FILES)
def test_every_trigger_of_each_file_exists_after_all_migrations(name):
    expected = _expected(name)
    assert expected, f"no CREATE TRIGGER read from tracking/sql/{name}.{connection.vendor}.sql"
    assert expected - db_triggers.triggers_installed(connection) == set()


def test_the_report_rollups_trigger_exists_on_postgresql():
    if connection.vendor != "postgresql":
        pytest.skip("report rollups are read from the calls on SQLite: no trigger")
    assert ("tracking_call_rollup_dirty", "tracking_call") in db_triggers.triggers_installed(connection)


@pytest.mark.parametrize("name", db_triggers.TRIGGER_FILES)
def test_installing_a_file_again_replaces_its_triggers_and_leaves_no_other(name):
    before = db_triggers.triggers_installed(connection)
    db_triggers.triggers_install(SimpleNamespace(connection=connection), name)
    assert db_triggers.triggers_installed(connection) == before
    db_triggers.triggers_drop(SimpleNamespace(connection=connection), name)
    assert db_triggers.triggers_installed(connection) == before - _expected(name)
    db_triggers.triggers_install(SimpleNamespace(connection=connection), name)
    assert db_triggers.triggers_installed(connection) == before


def test_both_forms_of_each_file_put_triggers_on_the_same_tables():
    for name in db_triggers.TRIGGER_FILES:
        tables = {vendor: {t for _, t in db_triggers.trigger_names(db_triggers.sql_text(name, vendor))} for vendor in db_triggers.VENDORS}
        assert tables["postgresql"] == tables["sqlite"], name


def test_the_sqlite_files_split_into_whole_statements():
    """Statements are separated by blank lines: each chunk is one complete statement (a trigger body has none)."""
    import sqlite3

    for name in db_triggers.TRIGGER_FILES:
        for statement in db_triggers.sqlite_statements(db_triggers.sql_text(name, "sqlite")):
            assert sqlite3.complete_statement(statement), (name, statement[:80])
            assert statement.upper().startswith("CREATE TRIGGER"), (name, statement[:80])
