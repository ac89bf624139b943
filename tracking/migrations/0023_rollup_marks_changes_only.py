"""The report rollups' trigger marks a call's day only when a value a figure reads changed: the routing state a
voice webhook writes (the decision's plan, dials and stored answers, the plan index) marks nothing unless it adds
or removes a skip at a cap. The definition is tracking/sql/call_rollup_dirty.sql (read when this migration runs
forwards; PostgreSQL only: on SQLite the selector never reads rollups). A fresh install runs this migration before
the calls' account column exists (migration 0039 installs the current file): it installs the copy frozen as it was
then, tracking/migrations/sql/0023_call_rollup_dirty.sql."""

import importlib
from pathlib import Path

from django.db import migrations

SQL_FILE = Path(__file__).resolve().parent / "sql" / "0023_call_rollup_dirty.sql"

# Put back when this migration is reversed: migration 0018's function, on the trigger as migration 0016 created it
# (its column list, without fallback_step), and no helper function.
_0016 = importlib.import_module("tracking.migrations.0016_call_is_test")
_0018 = importlib.import_module("tracking.migrations.0018_rollup_whole_keys_per_zone_marks")
_PREVIOUS = f"""
{_0018.FUNCTION_SQL}
DROP TRIGGER IF EXISTS tracking_call_rollup_dirty ON tracking_call;
CREATE TRIGGER tracking_call_rollup_dirty
    AFTER INSERT OR DELETE OR UPDATE OF {", ".join(_0016.REPORTED_COLUMNS)} ON tracking_call
    FOR EACH ROW EXECUTE FUNCTION tracking_call_rollup_dirty();
DROP FUNCTION IF EXISTS tracking_call_rollup_inputs(tracking_call);
"""


def function_install(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(SQL_FILE.read_text())


def function_restore(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(_PREVIOUS)


class Migration(migrations.Migration):

    dependencies = [
        ("tracking", "0022_config_version_triggers"),
    ]

    operations = [
        migrations.RunPython(function_install, function_restore),
    ]
