-- lock_promise: serialise completing a durable promise with registering interest in it (until
-- the transaction ends). Flushes take these before their fence, sorted by name.
CREATE OR REPLACE FUNCTION {s}.lock_promise(p_service text, p_key text, p_name text)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(1919969026, hashtext(p_service || '/' || p_key || '/' || p_name));
END
$$;
