-- Cap counters on SQLite: the same deltas as cap_counters.postgresql.sql (read its header). SQLite has no
-- trigger functions: each trigger carries its statements. Statements are separated by blank lines; installing
-- drops each trigger first (tracking.db_triggers), so installing again replaces them.

CREATE TRIGGER tracking_capdelta_attempt_insert AFTER INSERT ON tracking_callattempt FOR EACH ROW BEGIN
    INSERT INTO tracking_capdelta (handler_id, counts, at, delta) SELECT NEW.handler_id, 'connection', NEW.started_at, 1 WHERE NEW.counted AND NEW.handler_id IS NOT NULL;
END;

CREATE TRIGGER tracking_capdelta_attempt_update AFTER UPDATE OF counted, handler_id, started_at ON tracking_callattempt FOR EACH ROW
    WHEN (OLD.counted OR NEW.counted) AND (OLD.counted IS NOT NEW.counted OR OLD.handler_id IS NOT NEW.handler_id OR OLD.started_at IS NOT NEW.started_at)
BEGIN
    INSERT INTO tracking_capdelta (handler_id, counts, at, delta) SELECT OLD.handler_id, 'connection', OLD.started_at, -1 WHERE OLD.counted AND OLD.handler_id IS NOT NULL;
    INSERT INTO tracking_capdelta (handler_id, counts, at, delta) SELECT NEW.handler_id, 'connection', NEW.started_at, 1 WHERE NEW.counted AND NEW.handler_id IS NOT NULL;
END;

CREATE TRIGGER tracking_capdelta_attempt_delete AFTER DELETE ON tracking_callattempt FOR EACH ROW BEGIN
    INSERT INTO tracking_capdelta (handler_id, counts, at, delta) SELECT OLD.handler_id, 'connection', OLD.started_at, -1 WHERE OLD.counted AND OLD.handler_id IS NOT NULL;
END;

CREATE TRIGGER tracking_capdelta_call_insert AFTER INSERT ON tracking_call FOR EACH ROW BEGIN
    INSERT INTO tracking_capdelta (handler_id, counts, at, delta) SELECT NEW.handler_id, 'conversion', NEW.converted_at, 1 WHERE NEW.revenue_converted AND NEW.handler_id IS NOT NULL;
END;

CREATE TRIGGER tracking_capdelta_call_update AFTER UPDATE OF revenue_converted, handler_id, converted_at ON tracking_call FOR EACH ROW
    WHEN (OLD.revenue_converted OR NEW.revenue_converted)
     AND (OLD.revenue_converted IS NOT NEW.revenue_converted OR OLD.handler_id IS NOT NEW.handler_id OR OLD.converted_at IS NOT NEW.converted_at)
BEGIN
    INSERT INTO tracking_capdelta (handler_id, counts, at, delta) SELECT OLD.handler_id, 'conversion', OLD.converted_at, -1 WHERE OLD.revenue_converted AND OLD.handler_id IS NOT NULL;
    INSERT INTO tracking_capdelta (handler_id, counts, at, delta) SELECT NEW.handler_id, 'conversion', NEW.converted_at, 1 WHERE NEW.revenue_converted AND NEW.handler_id IS NOT NULL;
END;

CREATE TRIGGER tracking_capdelta_call_delete AFTER DELETE ON tracking_call FOR EACH ROW BEGIN
    INSERT INTO tracking_capdelta (handler_id, counts, at, delta) SELECT OLD.handler_id, 'conversion', OLD.converted_at, -1 WHERE OLD.revenue_converted AND OLD.handler_id IS NOT NULL;
END;
