-- The report rollups' change markers (tracking/models/reports.py): the day of every call inserted, deleted or
-- changed in a reported column is marked dirty in the writer's own transaction. Test calls are in no figure: a
-- test call's writes mark nothing, except when the flag itself changes (the call enters or leaves the figures).
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
    AFTER INSERT OR DELETE OR UPDATE OF {columns} ON tracking_call
    FOR EACH ROW EXECUTE FUNCTION tracking_call_rollup_dirty();
