-- Migration 0017's copy of the money history triggers, kept as they were then (the current ones are
-- money_history.*.sql, installed again by migration 0025): do not edit.
-- The money audit trail (tracking.MoneyChange, see tracking/models/audit.py): triggers record every change of a
-- call's value and of the terms calls are routed and paid on, whichever code wrote it (the ORM, QuerySet.update(),
-- the voice path's hand-written SQL, a SQL console). Who and from where: the transaction-local setting
-- calltrack.audit (JSON: origin, user_id, actor), set by calltrack.audit in the writer's own round trip.
-- Installed by tracking/migrations/0015_money_history.py; the columns listed here are AUDITED_COLUMNS.

CREATE OR REPLACE FUNCTION tracking_money_history_insert(
    tbl text, object_id bigint, handler_id bigint, op text, before jsonb, after jsonb, default_origin text
) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    ctx jsonb := NULLIF(current_setting('calltrack.audit', true), '')::jsonb;
BEGIN
    INSERT INTO tracking_moneychange ("table", object_id, handler_id, op, at, origin, user_id, actor, before, after)
    VALUES (tbl, object_id, handler_id, op, now(), COALESCE(ctx->>'origin', default_origin),
            (ctx->>'user_id')::integer, COALESCE(ctx->>'actor', ''), before, after);
END $$;

-- Calls: written on the voice path (the status callback settles the conversion), so the columns are named, not
-- read from the whole row (its routing decision and tags can be large). Without a context, the UPDATE that first
-- sets conversion_evaluated_at is the conversion rules' (routing/services/status.py, tracking/services/conversions.py).
CREATE OR REPLACE FUNCTION tracking_money_history_call() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    ctx jsonb := NULLIF(current_setting('calltrack.audit', true), '')::jsonb;
BEGIN
    -- The insert itself (not tracking_money_history_insert): one function call less on every settled call.
    INSERT INTO tracking_moneychange ("table", object_id, handler_id, op, at, origin, user_id, actor, before, after)
    VALUES ('call', NEW.id, NEW.handler_id, 'update', now(),
        COALESCE(ctx->>'origin',
                 CASE WHEN OLD.conversion_evaluated_at IS NULL AND NEW.conversion_evaluated_at IS NOT NULL THEN 'rule' ELSE '' END),
        (ctx->>'user_id')::integer, COALESCE(ctx->>'actor', ''),
        jsonb_build_object(
            'converted', OLD.converted, 'converted_at', OLD.converted_at, 'conversion_status', OLD.conversion_status,
            'conversion_reason', OLD.conversion_reason, 'revenue_converted', OLD.revenue_converted,
            'revenue', OLD.revenue, 'payout_converted', OLD.payout_converted, 'payout', OLD.payout,
            'payout_reason', OLD.payout_reason),
        jsonb_build_object(
            'converted', NEW.converted, 'converted_at', NEW.converted_at, 'conversion_status', NEW.conversion_status,
            'conversion_reason', NEW.conversion_reason, 'revenue_converted', NEW.revenue_converted,
            'revenue', NEW.revenue, 'payout_converted', NEW.payout_converted, 'payout', NEW.payout,
            'payout_reason', NEW.payout_reason));
    RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS tracking_money_history_call ON tracking_call;
CREATE TRIGGER tracking_money_history_call
    AFTER UPDATE OF converted, converted_at, conversion_status, conversion_reason, revenue_converted, revenue,
                    payout_converted, payout, payout_reason ON tracking_call
    FOR EACH ROW
    WHEN ((OLD.converted, OLD.converted_at, OLD.conversion_status, OLD.conversion_reason, OLD.revenue_converted,
           OLD.revenue, OLD.payout_converted, OLD.payout, OLD.payout_reason)
          IS DISTINCT FROM
          (NEW.converted, NEW.converted_at, NEW.conversion_status, NEW.conversion_reason, NEW.revenue_converted,
           NEW.revenue, NEW.payout_converted, NEW.payout, NEW.payout_reason))
    EXECUTE FUNCTION tracking_money_history_call();

-- The terms (rarely written): one function for every table. Arguments: the column naming the handler the row
-- concerns ('' for none), then the recorded columns; a column written '*name' is kept as a fingerprint only.
CREATE OR REPLACE FUNCTION tracking_money_history_terms() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    old_row jsonb := CASE WHEN TG_OP <> 'INSERT' THEN to_jsonb(OLD) END;
    new_row jsonb := CASE WHEN TG_OP <> 'DELETE' THEN to_jsonb(NEW) END;
    before jsonb := '{}';
    after jsonb := '{}';
    changed boolean := TG_OP <> 'UPDATE';
    col text;
    name text;
    o jsonb;
    n jsonb;
BEGIN
    FOREACH col IN ARRAY TG_ARGV[1:] LOOP
        name := ltrim(col, '*');
        o := old_row -> name;
        n := new_row -> name;
        IF col LIKE '*%' THEN
            o := CASE WHEN o IS NULL OR o = 'null' THEN o ELSE to_jsonb(left(md5(o #>> '{}'), 8)) END;
            n := CASE WHEN n IS NULL OR n = 'null' THEN n ELSE to_jsonb(left(md5(n #>> '{}'), 8)) END;
        END IF;
        changed := changed OR o IS DISTINCT FROM n;
        before := before || jsonb_build_object(name, o);
        after := after || jsonb_build_object(name, n);
    END LOOP;
    IF changed THEN
        PERFORM tracking_money_history_insert(
            substr(TG_TABLE_NAME, length('tracking_') + 1),
            (COALESCE(new_row, old_row) ->> 'id')::bigint,
            CASE WHEN TG_ARGV[0] = '' THEN NULL ELSE (COALESCE(new_row, old_row) ->> TG_ARGV[0])::bigint END,
            lower(TG_OP),
            CASE WHEN TG_OP = 'INSERT' THEN NULL ELSE before END,
            CASE WHEN TG_OP = 'DELETE' THEN NULL ELSE after END,
            '');
    END IF;
    RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS tracking_money_history_handler ON tracking_handler;
CREATE TRIGGER tracking_money_history_handler AFTER INSERT OR UPDATE OR DELETE ON tracking_handler FOR EACH ROW
    EXECUTE FUNCTION tracking_money_history_terms(
        'id', 'enabled', 'priority', 'weight', 'ring_timeout', 'concurrency_cap', 'hourly_cap', 'daily_cap',
        'monthly_cap', 'total_cap', 'cap_counts');

DROP TRIGGER IF EXISTS tracking_money_history_source ON tracking_source;
CREATE TRIGGER tracking_money_history_source AFTER INSERT OR UPDATE OR DELETE ON tracking_source FOR EACH ROW
    EXECUTE FUNCTION tracking_money_history_terms('', 'static_number_cap');

DROP TRIGGER IF EXISTS tracking_money_history_campaignhandler ON tracking_campaignhandler;
CREATE TRIGGER tracking_money_history_campaignhandler AFTER INSERT OR UPDATE OR DELETE ON tracking_campaignhandler
    FOR EACH ROW EXECUTE FUNCTION tracking_money_history_terms(
        'handler_id', 'campaign_id', 'handler_id', 'enabled', 'priority', 'weight');

DROP TRIGGER IF EXISTS tracking_money_history_conversionrule ON tracking_conversionrule;
CREATE TRIGGER tracking_money_history_conversionrule AFTER INSERT OR UPDATE OR DELETE ON tracking_conversionrule
    FOR EACH ROW EXECUTE FUNCTION tracking_money_history_terms(
        'handler_id', 'campaign_id', 'handler_id', 'side', 'kind', 'min_duration', 'revenue', 'payout',
        'postback_window', 'dedupe_window', 'dedupe_scope');

DROP TRIGGER IF EXISTS tracking_money_history_webhook ON tracking_webhook;
CREATE TRIGGER tracking_money_history_webhook AFTER INSERT OR UPDATE OR DELETE ON tracking_webhook FOR EACH ROW
    EXECUTE FUNCTION tracking_money_history_terms('', 'campaign_id', 'enabled', 'url', 'method', '*secret');
