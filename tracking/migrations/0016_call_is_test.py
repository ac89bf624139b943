"""Test calls (``Call.is_test``), the report rollups' trigger that leaves them out,
and the webhooks' [test_call] token."""

import importlib

from django.db import migrations, models

# The columns whose change changes a report figure (migration 0011's), and now the test flag.
REPORTED_COLUMNS = (
    "started_at", "status", "answered_at", "converted", "used_failsafe", "talk_time", "revenue", "payout",
    "source_id", "campaign_id", "handler_id", "tracking_number_id", "caller_state", "marketing_data", "decision", "is_test",
)
# This migration's definition (the current one is tracking/sql/call_rollup_dirty.sql, installed by a later
# migration): a test call's writes mark no day, except when the flag itself changes.
_THIS = f"""
CREATE OR REPLACE FUNCTION tracking_call_rollup_dirty() RETURNS trigger AS $$
BEGIN
    IF TG_OP <> 'INSERT' AND NOT OLD.is_test THEN
        INSERT INTO tracking_callrollupdirty (at) VALUES (OLD.started_at);
    END IF;
    IF NOT (TG_OP = 'DELETE') AND NOT NEW.is_test AND (
        TG_OP = 'INSERT' OR NEW.started_at IS DISTINCT FROM OLD.started_at OR OLD.is_test
    ) THEN
        INSERT INTO tracking_callrollupdirty (at) VALUES (NEW.started_at);
    END IF;
    RETURN NULL;
END
$$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS tracking_call_rollup_dirty ON tracking_call;
CREATE TRIGGER tracking_call_rollup_dirty
    AFTER INSERT OR DELETE OR UPDATE OF {", ".join(REPORTED_COLUMNS)} ON tracking_call
    FOR EACH ROW EXECUTE FUNCTION tracking_call_rollup_dirty();
"""

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


def sqlite_call_triggers(apps, schema_editor):
    """SQLite adds a NOT NULL column by rebuilding the table, which drops its triggers: put back the cap counters'
    triggers on the calls (migration 0006's) after the rebuild, both ways."""
    if schema_editor.connection.vendor != "sqlite":
        return
    caps = importlib.import_module("tracking.migrations.0006_cap_counters")
    with schema_editor.connection.cursor() as cursor:
        for op in ("insert", "update", "delete"):
            cursor.execute(f"DROP TRIGGER IF EXISTS tracking_capdelta_call_{op}")
        for sql in caps._sqlite_triggers("tracking_call", "call", "conversion", "revenue_converted", "converted_at"):
            cursor.execute(sql)


def trigger_replace(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(_THIS)


def trigger_restore(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(_PREVIOUS)


class Migration(migrations.Migration):

    dependencies = [
        ('tracking', '0015_ivr_menu_plural'),
    ]

    operations = [
        migrations.RunPython(migrations.RunPython.noop, sqlite_call_triggers),
        migrations.AddField(
            model_name='call',
            name='is_test',
            field=models.BooleanField(default=False, help_text='Placed from the admin\'s "Test call" (or simulate_call --test): left out of the reports, the caps\' counts and conversions, and sends webhooks only when the operator asked.', verbose_name='test call'),
        ),
        migrations.RunPython(sqlite_call_triggers, migrations.RunPython.noop),
        migrations.RunPython(trigger_replace, trigger_restore),
        # The webhook token [test_call] (the help text lists the tokens).
        migrations.AlterField(
            model_name='webhook',
            name='body_template',
            field=models.TextField(blank=True, help_text='Replacement tokens, in square brackets, may appear in the URL and the body: [event], [call_id], [call_sid], [caller_number], [called_number], [caller_city], [caller_state], [caller_zip], [caller_country], [campaign_id], [campaign_name], [source_id], [source_name], [handler_id], [handler_name], [buyer_id], [status], [started_at], [answered_at], [ended_at], [duration], [talk_time], [recording_url], [converted], [conversion_status], [conversion_reason], [revenue], [payout], [margin], [visitor_id], [landing_page], [referrer], [test_call], [utm_source], [utm_medium], [utm_campaign], [utm_term], [utm_content], [gclid], [fbclid], [msclkid]; [tag:NAME] for any call tag (e.g. [tag:state]); [data:KEY] for any marketing data key. Unknown tokens are refused when saving. Values are URL-encoded in URLs and form bodies and JSON-escaped in JSON bodies. A form body looks like caller=[caller_number]&state=[tag:state]; a JSON body like {"caller": "[caller_number]", "revenue": "[revenue]"}. A blank body sends every call field.'),
        ),
    ]
