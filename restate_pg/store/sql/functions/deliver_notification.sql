-- deliver_notification: put a result in an invocation's mailbox and wake it if suspended;
-- returns the process running it (to be told after commit), NULL if none.
CREATE OR REPLACE FUNCTION {s}.deliver_notification(
    p_target text, p_command integer, p_value bytea, p_failure_code integer, p_failure_message text,
    p_failure_metadata jsonb)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    v_owner text;
BEGIN
    INSERT INTO {s}.notification (invocation_id, command_index, value, failure_code, failure_message, failure_metadata)
    VALUES (p_target, p_command, p_value, p_failure_code, p_failure_message, p_failure_metadata);
    UPDATE {s}.task
       SET wakeups = wakeups + 1,
           status = CASE WHEN status = 'suspended' THEN 'ready' ELSE status END,
           run_at = CASE WHEN status = 'suspended' THEN now() ELSE run_at END
     WHERE invocation_id = p_target
    RETURNING lease_owner INTO v_owner;
    RETURN v_owner;
END
$$;
