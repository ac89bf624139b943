-- Cap counters on PostgreSQL: every change to what counts toward a handler's caps appends a delta to
-- tracking_capdelta (tracking/models/caps.py folds them into tracking_capcounter). A connected call counts as
-- an attempt row with ``counted`` and a handler; a converted call as a call row with ``revenue_converted`` and a
-- handler. The current definition: installed by the latest migration that changes it (tracking.db_triggers);
-- migration 0006 keeps its own frozen copy. Idempotent: installing it again replaces it.

CREATE OR REPLACE FUNCTION tracking_capdelta_attempt() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' AND OLD.counted AND OLD.handler_id IS NOT NULL THEN
        INSERT INTO tracking_capdelta (handler_id, counts, at, delta) VALUES (OLD.handler_id, 'connection', OLD.started_at, -1);
    END IF;
    IF TG_OP <> 'DELETE' AND NEW.counted AND NEW.handler_id IS NOT NULL THEN
        INSERT INTO tracking_capdelta (handler_id, counts, at, delta) VALUES (NEW.handler_id, 'connection', NEW.started_at, 1);
    END IF;
    RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS tracking_capdelta_attempt_insert ON tracking_callattempt;
CREATE TRIGGER tracking_capdelta_attempt_insert AFTER INSERT ON tracking_callattempt FOR EACH ROW
    WHEN (NEW.counted AND NEW.handler_id IS NOT NULL) EXECUTE FUNCTION tracking_capdelta_attempt();

DROP TRIGGER IF EXISTS tracking_capdelta_attempt_update ON tracking_callattempt;
CREATE TRIGGER tracking_capdelta_attempt_update AFTER UPDATE OF counted, handler_id, started_at ON tracking_callattempt FOR EACH ROW
    WHEN ((OLD.counted OR NEW.counted) AND (OLD.counted, OLD.handler_id, OLD.started_at) IS DISTINCT FROM (NEW.counted, NEW.handler_id, NEW.started_at))
    EXECUTE FUNCTION tracking_capdelta_attempt();

DROP TRIGGER IF EXISTS tracking_capdelta_attempt_delete ON tracking_callattempt;
CREATE TRIGGER tracking_capdelta_attempt_delete AFTER DELETE ON tracking_callattempt FOR EACH ROW
    WHEN (OLD.counted AND OLD.handler_id IS NOT NULL) EXECUTE FUNCTION tracking_capdelta_attempt();

CREATE OR REPLACE FUNCTION tracking_capdelta_call() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' AND OLD.revenue_converted AND OLD.handler_id IS NOT NULL THEN
        INSERT INTO tracking_capdelta (handler_id, counts, at, delta) VALUES (OLD.handler_id, 'conversion', OLD.converted_at, -1);
    END IF;
    IF TG_OP <> 'DELETE' AND NEW.revenue_converted AND NEW.handler_id IS NOT NULL THEN
        INSERT INTO tracking_capdelta (handler_id, counts, at, delta) VALUES (NEW.handler_id, 'conversion', NEW.converted_at, 1);
    END IF;
    RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS tracking_capdelta_call_insert ON tracking_call;
CREATE TRIGGER tracking_capdelta_call_insert AFTER INSERT ON tracking_call FOR EACH ROW
    WHEN (NEW.revenue_converted AND NEW.handler_id IS NOT NULL) EXECUTE FUNCTION tracking_capdelta_call();

DROP TRIGGER IF EXISTS tracking_capdelta_call_update ON tracking_call;
CREATE TRIGGER tracking_capdelta_call_update AFTER UPDATE OF revenue_converted, handler_id, converted_at ON tracking_call FOR EACH ROW
    WHEN ((OLD.revenue_converted OR NEW.revenue_converted)
          AND (OLD.revenue_converted, OLD.handler_id, OLD.converted_at) IS DISTINCT FROM (NEW.revenue_converted, NEW.handler_id, NEW.converted_at))
    EXECUTE FUNCTION tracking_capdelta_call();

DROP TRIGGER IF EXISTS tracking_capdelta_call_delete ON tracking_call;
CREATE TRIGGER tracking_capdelta_call_delete AFTER DELETE ON tracking_call FOR EACH ROW
    WHEN (OLD.revenue_converted AND OLD.handler_id IS NOT NULL) EXECUTE FUNCTION tracking_capdelta_call();
