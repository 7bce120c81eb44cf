-- kill_invocation: end an invocation now with 409 "killed", without running any more of it: its
-- task row goes, so a running attempt's next write is refused by the fence; its object key
-- passes to the next in line (ready for any worker); its caller and attached handlers are told;
-- the invocations it called or sent to are killed too. Returns {"status": missing | completed
-- | killed, "waiter", "woken", "ready": whether work became ready}.
CREATE OR REPLACE FUNCTION {s}.kill_invocation(p_id text)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    v_inv record;
    v_child text;
    v_child_result jsonb;
    v_result jsonb;
    v_ready boolean := false;
BEGIN
    -- lock order as in flush(): the task row (which fences a running attempt), the invocation
    -- row, then the object key
    PERFORM 1 FROM {s}.task WHERE invocation_id = p_id FOR UPDATE;
    SELECT status, service, key, handler_ty INTO v_inv FROM {s}.invocation WHERE id = p_id FOR UPDATE;
    IF NOT FOUND THEN
        RETURN jsonb_build_object('status', 'missing');
    ELSIF v_inv.status = 'completed' THEN
        RETURN jsonb_build_object('status', 'completed');
    END IF;
    IF v_inv.handler_ty = 'exclusive' AND v_inv.status = 'invoked' THEN
        PERFORM {s}.lock_object_key(v_inv.service, COALESCE(v_inv.key, ''));
        v_ready := {s}.release_object_key(v_inv.service, COALESCE(v_inv.key, ''), p_id, NULL) IS NOT NULL;
    END IF;
    v_result := jsonb_build_object('status', 'killed') || {s}.finish_invocation(p_id, 409, 'killed');
    FOR v_child IN
        SELECT params->>'invocation_id' FROM {s}.journal
         WHERE invocation_id = p_id AND entry_type IN ('Call', 'OneWayCall') AND command_index IS NOT NULL
    LOOP
        v_child_result := {s}.kill_invocation(v_child);
        IF v_child_result->>'status' = 'killed' THEN
            v_result := jsonb_set(v_result, '{woken}', (v_result->'woken') || (v_child_result->'woken'));
            v_ready := v_ready OR (v_child_result->>'ready')::boolean;
        END IF;
    END LOOP;
    RETURN v_result || jsonb_build_object('ready', v_ready);
END
$$;
