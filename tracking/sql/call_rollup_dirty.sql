-- Report rollups (tracking/models/reports.py): a call inserted, deleted or changed in a reported column marks
-- its day stale in every time zone rollups are kept in (tracking_callrollupzone), in the writer's transaction.
-- Test calls are in no figure: a test call's writes mark nothing, except when the flag itself changes (the call
-- enters or leaves the figures). The trigger (which columns fire it) is created by migrations 0011 and 0016;
-- this is the function it runs, installed by the latest migration that changes it.
CREATE OR REPLACE FUNCTION tracking_call_rollup_dirty() RETURNS trigger AS $$
BEGIN
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
