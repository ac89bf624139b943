"""Test calls (``Call.is_test``), and the report rollups' trigger that leaves them out (tracking/sql/call_rollup_dirty.sql)."""

from pathlib import Path

from django.db import migrations, models

# The columns whose change changes a report figure (migration 0011's), and now the test flag.
REPORTED_COLUMNS = (
    "started_at", "status", "answered_at", "converted", "used_failsafe", "talk_time", "revenue", "payout",
    "source_id", "campaign_id", "handler_id", "tracking_number_id", "caller_state", "marketing_data", "decision", "is_test",
)
_SQL = Path(__file__).resolve().parent.parent / "sql" / "call_rollup_dirty.sql"

# 0011's definition, put back when this migration is reversed.
_PREVIOUS = f"""
CREATE OR REPLACE FUNCTION tracking_call_rollup_dirty() RETURNS trigger AS $$
BEGIN
    IF TG_OP <> 'INSERT' THEN
        INSERT INTO tracking_callrollupdirty (at) VALUES (OLD.started_at);
    END IF;
    IF TG_OP = 'INSERT' OR (TG_OP = 'UPDATE' AND NEW.started_at IS DISTINCT FROM OLD.started_at) THEN
        INSERT INTO tracking_callrollupdirty (at) VALUES (NEW.started_at);
    END IF;
    RETURN NULL;
END
$$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS tracking_call_rollup_dirty ON tracking_call;
CREATE TRIGGER tracking_call_rollup_dirty
    AFTER INSERT OR DELETE OR UPDATE OF {", ".join(REPORTED_COLUMNS[:-1])} ON tracking_call
    FOR EACH ROW EXECUTE FUNCTION tracking_call_rollup_dirty();
"""


def trigger_replace(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(_SQL.read_text().replace("{columns}", ", ".join(REPORTED_COLUMNS)))


def trigger_restore(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(_PREVIOUS)


class Migration(migrations.Migration):

    dependencies = [
        ('tracking', '0014_call_indexes_covered'),
    ]

    operations = [
        migrations.AddField(
            model_name='call',
            name='is_test',
            field=models.BooleanField(default=False, help_text='Placed from the admin\'s "Test call" (or simulate_call --test): left out of the reports, the caps\' counts and conversions, and sends webhooks only when the operator asked.', verbose_name='test call'),
        ),
        migrations.RunPython(trigger_replace, trigger_restore),
    ]
