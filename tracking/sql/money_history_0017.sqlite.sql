-- Migration 0017's copy of the money history triggers, kept as they were then (the current ones are
-- money_history.*.sql, installed again by migration 0025): do not edit.
-- The money audit trail on SQLite: the same rows as money_history.postgresql.sql (read its header). Who and from
-- where: calltrack_audit(), an SQL function of the application's connection (calltrack.audit), JSON or NULL;
-- calltrack_fingerprint() keeps a secret's first 8 hex digits of MD5. Statements are separated by blank lines.

CREATE TRIGGER tracking_money_history_call
    AFTER UPDATE OF converted, converted_at, conversion_status, conversion_reason, revenue_converted, revenue, payout_converted, payout, payout_reason ON tracking_call FOR EACH ROW
    WHEN OLD.converted IS NOT NEW.converted
      OR OLD.converted_at IS NOT NEW.converted_at
      OR OLD.conversion_status IS NOT NEW.conversion_status
      OR OLD.conversion_reason IS NOT NEW.conversion_reason
      OR OLD.revenue_converted IS NOT NEW.revenue_converted
      OR OLD.revenue IS NOT NEW.revenue
      OR OLD.payout_converted IS NOT NEW.payout_converted
      OR OLD.payout IS NOT NEW.payout
      OR OLD.payout_reason IS NOT NEW.payout_reason
BEGIN
    INSERT INTO tracking_moneychange ("table", object_id, handler_id, op, at, origin, user_id, actor, before, after)
    SELECT 'call', NEW.id, NEW.handler_id, 'update', strftime('%Y-%m-%d %H:%M:%f', 'now'),
        COALESCE(json_extract(ctx, '$.origin'),
                 CASE WHEN OLD.conversion_evaluated_at IS NULL AND NEW.conversion_evaluated_at IS NOT NULL THEN 'rule' ELSE '' END),
        json_extract(ctx, '$.user_id'), COALESCE(json_extract(ctx, '$.actor'), ''),
        json_object(
            'converted', OLD.converted, 'converted_at', OLD.converted_at,
            'conversion_status', OLD.conversion_status, 'conversion_reason', OLD.conversion_reason,
            'revenue_converted', OLD.revenue_converted, 'revenue', OLD.revenue,
            'payout_converted', OLD.payout_converted, 'payout', OLD.payout,
            'payout_reason', OLD.payout_reason),
        json_object(
            'converted', NEW.converted, 'converted_at', NEW.converted_at,
            'conversion_status', NEW.conversion_status, 'conversion_reason', NEW.conversion_reason,
            'revenue_converted', NEW.revenue_converted, 'revenue', NEW.revenue,
            'payout_converted', NEW.payout_converted, 'payout', NEW.payout,
            'payout_reason', NEW.payout_reason)
    FROM (SELECT calltrack_audit() AS ctx);
END;

CREATE TRIGGER tracking_money_history_handler_insert
    AFTER INSERT ON tracking_handler FOR EACH ROW
BEGIN
    INSERT INTO tracking_moneychange ("table", object_id, handler_id, op, at, origin, user_id, actor, before, after)
    SELECT 'handler', NEW.id, NEW.id, 'insert', strftime('%Y-%m-%d %H:%M:%f', 'now'),
        COALESCE(json_extract(ctx, '$.origin'), ''), json_extract(ctx, '$.user_id'), COALESCE(json_extract(ctx, '$.actor'), ''),
        NULL,
        json_object(
            'enabled', NEW.enabled, 'priority', NEW.priority, 'weight', NEW.weight,
            'ring_timeout', NEW.ring_timeout, 'concurrency_cap', NEW.concurrency_cap,
            'hourly_cap', NEW.hourly_cap, 'daily_cap', NEW.daily_cap, 'monthly_cap', NEW.monthly_cap,
            'total_cap', NEW.total_cap, 'cap_counts', NEW.cap_counts)
    FROM (SELECT calltrack_audit() AS ctx);
END;

CREATE TRIGGER tracking_money_history_handler_update
    AFTER UPDATE ON tracking_handler FOR EACH ROW
    WHEN OLD.enabled IS NOT NEW.enabled
      OR OLD.priority IS NOT NEW.priority
      OR OLD.weight IS NOT NEW.weight
      OR OLD.ring_timeout IS NOT NEW.ring_timeout
      OR OLD.concurrency_cap IS NOT NEW.concurrency_cap
      OR OLD.hourly_cap IS NOT NEW.hourly_cap
      OR OLD.daily_cap IS NOT NEW.daily_cap
      OR OLD.monthly_cap IS NOT NEW.monthly_cap
      OR OLD.total_cap IS NOT NEW.total_cap
      OR OLD.cap_counts IS NOT NEW.cap_counts
BEGIN
    INSERT INTO tracking_moneychange ("table", object_id, handler_id, op, at, origin, user_id, actor, before, after)
    SELECT 'handler', NEW.id, NEW.id, 'update', strftime('%Y-%m-%d %H:%M:%f', 'now'),
        COALESCE(json_extract(ctx, '$.origin'), ''), json_extract(ctx, '$.user_id'), COALESCE(json_extract(ctx, '$.actor'), ''),
        json_object(
            'enabled', OLD.enabled, 'priority', OLD.priority, 'weight', OLD.weight,
            'ring_timeout', OLD.ring_timeout, 'concurrency_cap', OLD.concurrency_cap,
            'hourly_cap', OLD.hourly_cap, 'daily_cap', OLD.daily_cap, 'monthly_cap', OLD.monthly_cap,
            'total_cap', OLD.total_cap, 'cap_counts', OLD.cap_counts),
        json_object(
            'enabled', NEW.enabled, 'priority', NEW.priority, 'weight', NEW.weight,
            'ring_timeout', NEW.ring_timeout, 'concurrency_cap', NEW.concurrency_cap,
            'hourly_cap', NEW.hourly_cap, 'daily_cap', NEW.daily_cap, 'monthly_cap', NEW.monthly_cap,
            'total_cap', NEW.total_cap, 'cap_counts', NEW.cap_counts)
    FROM (SELECT calltrack_audit() AS ctx);
END;

CREATE TRIGGER tracking_money_history_handler_delete
    AFTER DELETE ON tracking_handler FOR EACH ROW
BEGIN
    INSERT INTO tracking_moneychange ("table", object_id, handler_id, op, at, origin, user_id, actor, before, after)
    SELECT 'handler', OLD.id, OLD.id, 'delete', strftime('%Y-%m-%d %H:%M:%f', 'now'),
        COALESCE(json_extract(ctx, '$.origin'), ''), json_extract(ctx, '$.user_id'), COALESCE(json_extract(ctx, '$.actor'), ''),
        json_object(
            'enabled', OLD.enabled, 'priority', OLD.priority, 'weight', OLD.weight,
            'ring_timeout', OLD.ring_timeout, 'concurrency_cap', OLD.concurrency_cap,
            'hourly_cap', OLD.hourly_cap, 'daily_cap', OLD.daily_cap, 'monthly_cap', OLD.monthly_cap,
            'total_cap', OLD.total_cap, 'cap_counts', OLD.cap_counts),
        NULL
    FROM (SELECT calltrack_audit() AS ctx);
END;

CREATE TRIGGER tracking_money_history_source_insert
    AFTER INSERT ON tracking_source FOR EACH ROW
BEGIN
    INSERT INTO tracking_moneychange ("table", object_id, handler_id, op, at, origin, user_id, actor, before, after)
    SELECT 'source', NEW.id, NULL, 'insert', strftime('%Y-%m-%d %H:%M:%f', 'now'),
        COALESCE(json_extract(ctx, '$.origin'), ''), json_extract(ctx, '$.user_id'), COALESCE(json_extract(ctx, '$.actor'), ''),
        NULL,
        json_object(
            'static_number_cap', NEW.static_number_cap)
    FROM (SELECT calltrack_audit() AS ctx);
END;

CREATE TRIGGER tracking_money_history_source_update
    AFTER UPDATE ON tracking_source FOR EACH ROW
    WHEN OLD.static_number_cap IS NOT NEW.static_number_cap
BEGIN
    INSERT INTO tracking_moneychange ("table", object_id, handler_id, op, at, origin, user_id, actor, before, after)
    SELECT 'source', NEW.id, NULL, 'update', strftime('%Y-%m-%d %H:%M:%f', 'now'),
        COALESCE(json_extract(ctx, '$.origin'), ''), json_extract(ctx, '$.user_id'), COALESCE(json_extract(ctx, '$.actor'), ''),
        json_object(
            'static_number_cap', OLD.static_number_cap),
        json_object(
            'static_number_cap', NEW.static_number_cap)
    FROM (SELECT calltrack_audit() AS ctx);
END;

CREATE TRIGGER tracking_money_history_source_delete
    AFTER DELETE ON tracking_source FOR EACH ROW
BEGIN
    INSERT INTO tracking_moneychange ("table", object_id, handler_id, op, at, origin, user_id, actor, before, after)
    SELECT 'source', OLD.id, NULL, 'delete', strftime('%Y-%m-%d %H:%M:%f', 'now'),
        COALESCE(json_extract(ctx, '$.origin'), ''), json_extract(ctx, '$.user_id'), COALESCE(json_extract(ctx, '$.actor'), ''),
        json_object(
            'static_number_cap', OLD.static_number_cap),
        NULL
    FROM (SELECT calltrack_audit() AS ctx);
END;

CREATE TRIGGER tracking_money_history_campaignhandler_insert
    AFTER INSERT ON tracking_campaignhandler FOR EACH ROW
BEGIN
    INSERT INTO tracking_moneychange ("table", object_id, handler_id, op, at, origin, user_id, actor, before, after)
    SELECT 'campaignhandler', NEW.id, NEW.handler_id, 'insert', strftime('%Y-%m-%d %H:%M:%f', 'now'),
        COALESCE(json_extract(ctx, '$.origin'), ''), json_extract(ctx, '$.user_id'), COALESCE(json_extract(ctx, '$.actor'), ''),
        NULL,
        json_object(
            'campaign_id', NEW.campaign_id, 'handler_id', NEW.handler_id, 'enabled', NEW.enabled,
            'priority', NEW.priority, 'weight', NEW.weight)
    FROM (SELECT calltrack_audit() AS ctx);
END;

CREATE TRIGGER tracking_money_history_campaignhandler_update
    AFTER UPDATE ON tracking_campaignhandler FOR EACH ROW
    WHEN OLD.campaign_id IS NOT NEW.campaign_id
      OR OLD.handler_id IS NOT NEW.handler_id
      OR OLD.enabled IS NOT NEW.enabled
      OR OLD.priority IS NOT NEW.priority
      OR OLD.weight IS NOT NEW.weight
BEGIN
    INSERT INTO tracking_moneychange ("table", object_id, handler_id, op, at, origin, user_id, actor, before, after)
    SELECT 'campaignhandler', NEW.id, NEW.handler_id, 'update', strftime('%Y-%m-%d %H:%M:%f', 'now'),
        COALESCE(json_extract(ctx, '$.origin'), ''), json_extract(ctx, '$.user_id'), COALESCE(json_extract(ctx, '$.actor'), ''),
        json_object(
            'campaign_id', OLD.campaign_id, 'handler_id', OLD.handler_id, 'enabled', OLD.enabled,
            'priority', OLD.priority, 'weight', OLD.weight),
        json_object(
            'campaign_id', NEW.campaign_id, 'handler_id', NEW.handler_id, 'enabled', NEW.enabled,
            'priority', NEW.priority, 'weight', NEW.weight)
    FROM (SELECT calltrack_audit() AS ctx);
END;

CREATE TRIGGER tracking_money_history_campaignhandler_delete
    AFTER DELETE ON tracking_campaignhandler FOR EACH ROW
BEGIN
    INSERT INTO tracking_moneychange ("table", object_id, handler_id, op, at, origin, user_id, actor, before, after)
    SELECT 'campaignhandler', OLD.id, OLD.handler_id, 'delete', strftime('%Y-%m-%d %H:%M:%f', 'now'),
        COALESCE(json_extract(ctx, '$.origin'), ''), json_extract(ctx, '$.user_id'), COALESCE(json_extract(ctx, '$.actor'), ''),
        json_object(
            'campaign_id', OLD.campaign_id, 'handler_id', OLD.handler_id, 'enabled', OLD.enabled,
            'priority', OLD.priority, 'weight', OLD.weight),
        NULL
    FROM (SELECT calltrack_audit() AS ctx);
END;

CREATE TRIGGER tracking_money_history_conversionrule_insert
    AFTER INSERT ON tracking_conversionrule FOR EACH ROW
BEGIN
    INSERT INTO tracking_moneychange ("table", object_id, handler_id, op, at, origin, user_id, actor, before, after)
    SELECT 'conversionrule', NEW.id, NEW.handler_id, 'insert', strftime('%Y-%m-%d %H:%M:%f', 'now'),
        COALESCE(json_extract(ctx, '$.origin'), ''), json_extract(ctx, '$.user_id'), COALESCE(json_extract(ctx, '$.actor'), ''),
        NULL,
        json_object(
            'campaign_id', NEW.campaign_id, 'handler_id', NEW.handler_id, 'side', NEW.side,
            'kind', NEW.kind, 'min_duration', NEW.min_duration, 'revenue', NEW.revenue,
            'payout', NEW.payout, 'postback_window', NEW.postback_window,
            'dedupe_window', NEW.dedupe_window, 'dedupe_scope', NEW.dedupe_scope)
    FROM (SELECT calltrack_audit() AS ctx);
END;

CREATE TRIGGER tracking_money_history_conversionrule_update
    AFTER UPDATE ON tracking_conversionrule FOR EACH ROW
    WHEN OLD.campaign_id IS NOT NEW.campaign_id
      OR OLD.handler_id IS NOT NEW.handler_id
      OR OLD.side IS NOT NEW.side
      OR OLD.kind IS NOT NEW.kind
      OR OLD.min_duration IS NOT NEW.min_duration
      OR OLD.revenue IS NOT NEW.revenue
      OR OLD.payout IS NOT NEW.payout
      OR OLD.postback_window IS NOT NEW.postback_window
      OR OLD.dedupe_window IS NOT NEW.dedupe_window
      OR OLD.dedupe_scope IS NOT NEW.dedupe_scope
BEGIN
    INSERT INTO tracking_moneychange ("table", object_id, handler_id, op, at, origin, user_id, actor, before, after)
    SELECT 'conversionrule', NEW.id, NEW.handler_id, 'update', strftime('%Y-%m-%d %H:%M:%f', 'now'),
        COALESCE(json_extract(ctx, '$.origin'), ''), json_extract(ctx, '$.user_id'), COALESCE(json_extract(ctx, '$.actor'), ''),
        json_object(
            'campaign_id', OLD.campaign_id, 'handler_id', OLD.handler_id, 'side', OLD.side,
            'kind', OLD.kind, 'min_duration', OLD.min_duration, 'revenue', OLD.revenue,
            'payout', OLD.payout, 'postback_window', OLD.postback_window,
            'dedupe_window', OLD.dedupe_window, 'dedupe_scope', OLD.dedupe_scope),
        json_object(
            'campaign_id', NEW.campaign_id, 'handler_id', NEW.handler_id, 'side', NEW.side,
            'kind', NEW.kind, 'min_duration', NEW.min_duration, 'revenue', NEW.revenue,
            'payout', NEW.payout, 'postback_window', NEW.postback_window,
            'dedupe_window', NEW.dedupe_window, 'dedupe_scope', NEW.dedupe_scope)
    FROM (SELECT calltrack_audit() AS ctx);
END;

CREATE TRIGGER tracking_money_history_conversionrule_delete
    AFTER DELETE ON tracking_conversionrule FOR EACH ROW
BEGIN
    INSERT INTO tracking_moneychange ("table", object_id, handler_id, op, at, origin, user_id, actor, before, after)
    SELECT 'conversionrule', OLD.id, OLD.handler_id, 'delete', strftime('%Y-%m-%d %H:%M:%f', 'now'),
        COALESCE(json_extract(ctx, '$.origin'), ''), json_extract(ctx, '$.user_id'), COALESCE(json_extract(ctx, '$.actor'), ''),
        json_object(
            'campaign_id', OLD.campaign_id, 'handler_id', OLD.handler_id, 'side', OLD.side,
            'kind', OLD.kind, 'min_duration', OLD.min_duration, 'revenue', OLD.revenue,
            'payout', OLD.payout, 'postback_window', OLD.postback_window,
            'dedupe_window', OLD.dedupe_window, 'dedupe_scope', OLD.dedupe_scope),
        NULL
    FROM (SELECT calltrack_audit() AS ctx);
END;

CREATE TRIGGER tracking_money_history_webhook_insert
    AFTER INSERT ON tracking_webhook FOR EACH ROW
BEGIN
    INSERT INTO tracking_moneychange ("table", object_id, handler_id, op, at, origin, user_id, actor, before, after)
    SELECT 'webhook', NEW.id, NULL, 'insert', strftime('%Y-%m-%d %H:%M:%f', 'now'),
        COALESCE(json_extract(ctx, '$.origin'), ''), json_extract(ctx, '$.user_id'), COALESCE(json_extract(ctx, '$.actor'), ''),
        NULL,
        json_object(
            'campaign_id', NEW.campaign_id, 'enabled', NEW.enabled, 'url', NEW.url,
            'method', NEW.method, 'secret', calltrack_fingerprint(NEW.secret))
    FROM (SELECT calltrack_audit() AS ctx);
END;

CREATE TRIGGER tracking_money_history_webhook_update
    AFTER UPDATE ON tracking_webhook FOR EACH ROW
    WHEN OLD.campaign_id IS NOT NEW.campaign_id
      OR OLD.enabled IS NOT NEW.enabled
      OR OLD.url IS NOT NEW.url
      OR OLD.method IS NOT NEW.method
      OR OLD.secret IS NOT NEW.secret
BEGIN
    INSERT INTO tracking_moneychange ("table", object_id, handler_id, op, at, origin, user_id, actor, before, after)
    SELECT 'webhook', NEW.id, NULL, 'update', strftime('%Y-%m-%d %H:%M:%f', 'now'),
        COALESCE(json_extract(ctx, '$.origin'), ''), json_extract(ctx, '$.user_id'), COALESCE(json_extract(ctx, '$.actor'), ''),
        json_object(
            'campaign_id', OLD.campaign_id, 'enabled', OLD.enabled, 'url', OLD.url,
            'method', OLD.method, 'secret', calltrack_fingerprint(OLD.secret)),
        json_object(
            'campaign_id', NEW.campaign_id, 'enabled', NEW.enabled, 'url', NEW.url,
            'method', NEW.method, 'secret', calltrack_fingerprint(NEW.secret))
    FROM (SELECT calltrack_audit() AS ctx);
END;

CREATE TRIGGER tracking_money_history_webhook_delete
    AFTER DELETE ON tracking_webhook FOR EACH ROW
BEGIN
    INSERT INTO tracking_moneychange ("table", object_id, handler_id, op, at, origin, user_id, actor, before, after)
    SELECT 'webhook', OLD.id, NULL, 'delete', strftime('%Y-%m-%d %H:%M:%f', 'now'),
        COALESCE(json_extract(ctx, '$.origin'), ''), json_extract(ctx, '$.user_id'), COALESCE(json_extract(ctx, '$.actor'), ''),
        json_object(
            'campaign_id', OLD.campaign_id, 'enabled', OLD.enabled, 'url', OLD.url,
            'method', OLD.method, 'secret', calltrack_fingerprint(OLD.secret)),
        NULL
    FROM (SELECT calltrack_audit() AS ctx);
END;
