-- complete_promise: resolve or reject a promise, once; tells every registered waiter. Returns
-- {"status": "completed" | "already", "woken": [[invocation, owner], ...]}; the command that
-- completed it gets "completed" again when it repeats (a replay). The caller holds lock_promise.
CREATE OR REPLACE FUNCTION {s}.complete_promise(p_service text, p_key text, p jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    v_promise record;
    v_waiter record;
    v_woken jsonb := '[]'::jsonb;
BEGIN
    SELECT * INTO v_promise FROM {s}.promise WHERE service = p_service AND key = p_key AND name = p->>'name';
    IF FOUND AND v_promise.completed THEN
        IF v_promise.completed_by = p->>'invocation_id' AND v_promise.completed_by_command = (p->>'command')::integer THEN
            RETURN jsonb_build_object('status', 'completed', 'woken', v_woken);
        END IF;
        RETURN jsonb_build_object('status', 'already', 'woken', v_woken);
    END IF;
    INSERT INTO {s}.promise (service, key, name, completed, value, failure_code, failure_message,
                             failure_metadata, completed_by, completed_by_command, completed_at)
    VALUES (p_service, p_key, p->>'name', true, decode(p->>'value', 'base64'), (p->>'failure_code')::integer,
            p->>'failure_message', p->'failure_metadata', p->>'invocation_id', (p->>'command')::integer, now())
    ON CONFLICT (service, key, name) DO UPDATE
       SET completed = true, value = EXCLUDED.value, failure_code = EXCLUDED.failure_code,
           failure_message = EXCLUDED.failure_message, failure_metadata = EXCLUDED.failure_metadata,
           completed_by = EXCLUDED.completed_by, completed_by_command = EXCLUDED.completed_by_command,
           completed_at = EXCLUDED.completed_at;
    FOR v_waiter IN
        DELETE FROM {s}.promise_waiter WHERE service = p_service AND key = p_key AND name = p->>'name'
        RETURNING invocation_id, command_index
    LOOP
        v_woken := v_woken || jsonb_build_array(jsonb_build_array(v_waiter.invocation_id, {s}.deliver_notification(
            v_waiter.invocation_id, v_waiter.command_index, decode(p->>'value', 'base64'),
            (p->>'failure_code')::integer, p->>'failure_message', p->'failure_metadata')));
    END LOOP;
    RETURN jsonb_build_object('status', 'completed', 'woken', v_woken);
END
$$;
