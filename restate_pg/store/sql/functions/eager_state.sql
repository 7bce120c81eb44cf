-- eager_state: every state value of an object key, base64, for an attempt about to start here,
-- so that it needs no read of its own; NULL when they are too many bytes to be worth sending.
CREATE OR REPLACE FUNCTION {s}.eager_state(p_service text, p_key text)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    v_state jsonb;
BEGIN
    SELECT CASE WHEN count(*) = 0 THEN '{}'::jsonb
                WHEN sum(octet_length(value)) <= 65536
                THEN jsonb_object_agg(name, encode(value, 'base64')) END
      INTO v_state
      FROM {s}.state_entry WHERE service = p_service AND key = p_key;
    RETURN v_state;
END
$$;
