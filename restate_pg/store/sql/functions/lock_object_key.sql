-- lock_object_key: serialise every change of who holds an object key (until the transaction ends)
CREATE OR REPLACE FUNCTION {s}.lock_object_key(p_service text, p_key text)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(1919969025, hashtext(p_service || '/' || p_key));
END
$$;
