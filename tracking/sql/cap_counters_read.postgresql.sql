-- The pending cap deltas of a set of handlers, summed per handler and trigger over its current hour/day/month and
-- ever, with how many are pending (routing.store.counters reads them with the cap counters: one grouped read).
--
-- Why a function: tracking_capdelta is a queue. The fold empties it every minute and autovacuum then analyses it
-- empty; a plan made on those statistics (the counter statement is prepared once per connection and keeps its
-- generic plan) reads the whole table, and keeps doing so as thousands of deltas pile up. A function's own
-- settings hold while its query is planned: with sequential scans off, the read is an index scan on
-- capdelta_handler_counts_at (handler_id, counts, at) INCLUDE (delta), whatever the statistics say and whenever
-- the plan was made. Its cost follows the deltas of these handlers, not the table.
-- Installed by migration 0029 (tracking.db_triggers.sql_text); idempotent.

CREATE OR REPLACE FUNCTION tracking_capdelta_pending(
    p_ids bigint[], p_counts text[], p_hour timestamptz[], p_day timestamptz[], p_month timestamptz[]
) RETURNS TABLE (handler_id bigint, counts text, hour bigint, day bigint, month bigint, total bigint, pending bigint)
LANGUAGE plpgsql STABLE ROWS 100 SET enable_seqscan = off AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    SELECT d.handler_id, d.counts::text,
           COALESCE(SUM(d.delta) FILTER (WHERE d.at >= w.hour_start), 0)::bigint,
           COALESCE(SUM(d.delta) FILTER (WHERE d.at >= w.day_start), 0)::bigint,
           COALESCE(SUM(d.delta) FILTER (WHERE d.at >= w.month_start), 0)::bigint,
           SUM(d.delta)::bigint,
           COUNT(*)
    FROM unnest(p_ids, p_counts, p_hour, p_day, p_month) AS w(handler_id, counts, hour_start, day_start, month_start)
    JOIN tracking_capdelta d ON d.handler_id = w.handler_id AND d.counts = w.counts
    WHERE d.handler_id = ANY(p_ids)
    GROUP BY d.handler_id, d.counts;
END $$;
