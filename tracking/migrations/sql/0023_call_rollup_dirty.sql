-- Report rollups (tracking/models/reports.py): a call inserted, deleted or changed in a value a report figure
-- reads marks its day stale in every time zone rollups are kept in (tracking_callrollupzone), in the writer's
-- transaction. Test calls are in no figure: a test call's writes mark nothing, except when the flag itself
-- changes (the call enters or leaves the figures).
--
-- An UPDATE marks only when a reported value differs between OLD and NEW, so a voice webhook that writes the
-- routing state (the decision's plan, dials, stored answers; the plan index) marks nothing. The values are what
-- tracking/report_figures.py reads for the rollups (day_rollup in tracking/services/reports.py):
--   started_at (the day), status and answered_at (the outcomes), converted, used_failsafe, talk_time, revenue,
--   payout; the breakdowns' keys: source_id, campaign_id, handler_id, tracking_number_id, caller_state, the UTM
--   keys of marketing_data (MARKETING_DIMS), and whether an answered call with no handler has a fallback step (the
--   handler breakdown's "fallback" row, FALLBACK_ANSWERED); of the decision only the handlers skipped at a cap
--   (capped_counts).
-- A figure that reads another value must be added here, to the trigger's column list and to
-- tracking_call_rollup_inputs below, in a new migration that installs this file.
--
-- This file is the whole current definition (installed, idempotently, by the latest migration that changes it).

-- The values of a call that the rollups' figures read (minus is_test, handled apart): equal rows, equal figures.
CREATE OR REPLACE FUNCTION tracking_call_rollup_inputs(c tracking_call) RETURNS jsonb AS $$
    SELECT jsonb_build_array(
        c.started_at, c.status, c.answered_at, c.converted, c.used_failsafe, c.talk_time, c.revenue, c.payout,
        c.source_id, c.campaign_id, c.handler_id, c.tracking_number_id, c.caller_state,
        c.answered_at IS NOT NULL AND c.handler_id IS NULL AND c.fallback_step <> '',  -- FALLBACK_ANSWERED
        c.marketing_data -> 'utm_source', c.marketing_data -> 'utm_medium', c.marketing_data -> 'utm_campaign',
        jsonb_path_query_array(c.decision, '$.skipped[*] ? (@.reason == "capped").handler_id')
    )
$$ LANGUAGE sql STABLE;

CREATE OR REPLACE FUNCTION tracking_call_rollup_dirty() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.is_test = OLD.is_test
       AND tracking_call_rollup_inputs(NEW) = tracking_call_rollup_inputs(OLD) THEN
        RETURN NULL;  -- routing state only (the plan, the dials, the stored answers): no figure changed
    END IF;
    IF TG_OP <> 'INSERT' AND NOT OLD.is_test THEN
        INSERT INTO tracking_callrollupdirty (at, tz) SELECT OLD.started_at, z.tz FROM tracking_callrollupzone z;
    END IF;
    IF TG_OP <> 'DELETE' AND NOT NEW.is_test AND (
        TG_OP = 'INSERT' OR NEW.started_at IS DISTINCT FROM OLD.started_at OR OLD.is_test
    ) THEN
        INSERT INTO tracking_callrollupdirty (at, tz) SELECT NEW.started_at, z.tz FROM tracking_callrollupzone z;
    END IF;
    RETURN NULL;
END
$$ LANGUAGE plpgsql;

-- Which updates run the function at all: those that set a column it compares (the rest, e.g. tags or the
-- recording's columns, do not fire it).
DROP TRIGGER IF EXISTS tracking_call_rollup_dirty ON tracking_call;
CREATE TRIGGER tracking_call_rollup_dirty
    AFTER INSERT OR DELETE OR UPDATE OF
        started_at, status, answered_at, converted, used_failsafe, talk_time, revenue, payout,
        source_id, campaign_id, handler_id, fallback_step, tracking_number_id, caller_state, marketing_data, decision, is_test
    ON tracking_call
    FOR EACH ROW EXECUTE FUNCTION tracking_call_rollup_dirty();
