-- cancel_invocation: ask an invocation to stop. One that never ran (inboxed, scheduled) ends at
-- once with 409 "canceled"; a running, suspended, backing-off or paused one gets the cancel
-- signal in its mailbox (raised by its handler at its next await) and is made runnable.
-- Returns {"status": missing | completed | canceled | signalled, "owner", "waiter", "woken"}.
CREATE OR REPLACE FUNCTION {s}.cancel_invocation(p_id text)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    v_status text;
    v_owner text;
BEGIN
    -- lock order as in flush(): the task row, then the invocation row
    PERFORM 1 FROM {s}.task WHERE invocation_id = p_id FOR UPDATE;
    SELECT status INTO v_status FROM {s}.invocation WHERE id = p_id FOR UPDATE;
    IF NOT FOUND THEN
        RETURN jsonb_build_object('status', 'missing');
    ELSIF v_status = 'completed' THEN
        RETURN jsonb_build_object('status', 'completed');
    ELSIF v_status IN ('inboxed', 'scheduled') THEN
        RETURN jsonb_build_object('status', 'canceled') || {s}.finish_invocation(p_id, 409, 'canceled');
    END IF;
    UPDATE {s}.task SET status = 'ready', run_at = now()
     WHERE invocation_id = p_id AND status IN ('backing-off', 'paused');
    v_owner := {s}.deliver_notification(p_id, -1, NULL, NULL, NULL, NULL);
    RETURN jsonb_build_object('status', 'signalled', 'woken', jsonb_build_array(jsonb_build_array(p_id, v_owner)));
END
$$;
