-- A new DNI visitor's lock and check, inside the one statement that opens its session
-- (calltrack/numbers/dni/services.py, _open_sql with first_visit).
--
-- Two requests of one visitor (two tabs opened at once) must not open two sessions: the first takes the visitor's
-- transaction-level advisory lock, and a request that waited for it must then see the session the other committed
-- meanwhile. A statement's own snapshot is taken before it waits for a lock, so the check cannot be part of the
-- statement's query itself; a VOLATILE function's queries each take a fresh snapshot (READ COMMITTED), so the check
-- below, made after the lock is ours, sees what was committed while this request waited. It answers whether the
-- visitor still has no live session of the pool for the destination ('' : any destination), and with ``relax``
-- (CALLTRACK_DNI_ASYNC_COMMIT) lets the transaction's commit skip the WAL flush.
CREATE OR REPLACE FUNCTION dni_visitor_first(
    p_lock bigint, p_relax boolean, p_pool bigint, p_visitor text, p_now timestamptz, p_destination text
) RETURNS boolean LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(p_lock);
    IF p_relax THEN
        PERFORM set_config('synchronous_commit', 'off', true);
    END IF;
    RETURN NOT EXISTS (
        SELECT FROM numbers_numbersession s
        WHERE s.pool_id = p_pool AND s.visitor_id = p_visitor AND s.expires_at > p_now
          AND (p_destination = '' OR s.destination_number = p_destination)
    );
END
$$;
