-- finish_invocation: end an invocation that never ran (inboxed or scheduled) with a failure, and
-- tell whoever waits for it: its caller, attached handlers; returns {"waiter", "woken"}. The
-- attempts it took are kept, as `flush` keeps them (none, unless it was retried and is now killed).
CREATE OR REPLACE FUNCTION {s}.finish_invocation(p_id text, p_code integer, p_message text)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    v_row record;
    v_waiter record;
    v_woken jsonb := '[]'::jsonb;
BEGIN
    UPDATE {s}.invocation
       SET status = 'completed', completed_at = now(), modified_at = now(), result = 'failure',
           failure_code = p_code, failure_message = p_message,
           retain_until = now() + interval '1 day',
           attempts = COALESCE((SELECT t.attempt FROM {s}.task t WHERE t.invocation_id = p_id), attempts, 0)
     WHERE id = p_id
    RETURNING waiter, caller_id, caller_command INTO v_row;
    DELETE FROM {s}.task WHERE invocation_id = p_id;
    DELETE FROM {s}.inbox WHERE invocation_id = p_id;
    IF v_row.caller_id IS NOT NULL THEN
        v_woken := v_woken || jsonb_build_array(jsonb_build_array(v_row.caller_id, {s}.deliver_notification(
            v_row.caller_id, v_row.caller_command, NULL, p_code, p_message, NULL)));
    END IF;
    FOR v_waiter IN DELETE FROM {s}.invocation_waiter WHERE invocation_id = p_id RETURNING waiter_id, command_index LOOP
        v_woken := v_woken || jsonb_build_array(jsonb_build_array(v_waiter.waiter_id, {s}.deliver_notification(
            v_waiter.waiter_id, v_waiter.command_index, NULL, p_code, p_message, NULL)));
    END LOOP;
    RETURN jsonb_build_object('waiter', v_row.waiter, 'woken', v_woken);
END
$$;
