-- attach_invocation: the result of invocation p_target for command p_command of p_invocation:
-- {"completed": true, "value"|"failure_*"}; {"completed": false} after registering the command
-- to be told at completion; {"missing": true} if there is no such invocation. The share lock
-- on the target's row orders this before or after its completion, never across it.
CREATE OR REPLACE FUNCTION {s}.attach_invocation(p_target text, p_invocation text, p_command integer)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    v_target record;
BEGIN
    SELECT status, result, output, failure_code, failure_message, failure_metadata INTO v_target
      FROM {s}.invocation WHERE id = p_target FOR SHARE;
    IF NOT FOUND THEN
        RETURN jsonb_build_object('missing', true);
    END IF;
    IF v_target.status = 'completed' THEN
        RETURN jsonb_build_object('completed', true, 'value', encode(v_target.output, 'base64'),
                                  'failure_code', v_target.failure_code,
                                  'failure_message', v_target.failure_message,
                                  'failure_metadata', v_target.failure_metadata);
    END IF;
    INSERT INTO {s}.invocation_waiter (invocation_id, waiter_id, command_index)
    VALUES (p_target, p_invocation, p_command) ON CONFLICT DO NOTHING;
    RETURN jsonb_build_object('completed', false);
END
$$;
