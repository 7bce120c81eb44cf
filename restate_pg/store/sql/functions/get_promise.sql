-- get_promise: a promise's outcome for command p_command of p_invocation: {"completed": true,
-- "value"|"failure_*"} if completed; else {"completed": false}, and unless it is a peek the
-- command is registered to be told by complete_promise. The caller holds lock_promise.
CREATE OR REPLACE FUNCTION {s}.get_promise(
    p_service text, p_key text, p_name text, p_invocation text, p_command integer, p_peek boolean)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    v_promise record;
BEGIN
    SELECT * INTO v_promise FROM {s}.promise WHERE service = p_service AND key = p_key AND name = p_name;
    IF FOUND AND v_promise.completed THEN
        RETURN jsonb_build_object('completed', true, 'value', encode(v_promise.value, 'base64'),
                                  'failure_code', v_promise.failure_code,
                                  'failure_message', v_promise.failure_message,
                                  'failure_metadata', v_promise.failure_metadata);
    END IF;
    IF NOT p_peek THEN
        INSERT INTO {s}.promise_waiter (service, key, name, invocation_id, command_index)
        VALUES (p_service, p_key, p_name, p_invocation, p_command) ON CONFLICT DO NOTHING;
    END IF;
    RETURN jsonb_build_object('completed', false);
END
$$;
