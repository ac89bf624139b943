-- Report rollups (tracking/models/reports.py): a call inserted, deleted or changed in a reported column marks
-- its day stale in every time zone rollups are kept in (tracking_callrollupzone), in the writer's transaction.
-- The trigger itself (which columns fire it) is created by migration 0011; this is the function it runs.
CREATE OR REPLACE FUNCTION tracking_call_rollup_dirty() RETURNS trigger AS $$
BEGIN
    IF TG_OP <> 'INSERT' THEN
        INSERT INTO tracking_callrollupdirty (at, tz) SELECT OLD.started_at, z.tz FROM tracking_callrollupzone z;
    END IF;
    IF TG_OP = 'INSERT' OR (TG_OP = 'UPDATE' AND NEW.started_at IS DISTINCT FROM OLD.started_at) THEN
        INSERT INTO tracking_callrollupdirty (at, tz) SELECT NEW.started_at, z.tz FROM tracking_callrollupzone z;
    END IF;
    RETURN NULL;
END
$$ LANGUAGE plpgsql;
