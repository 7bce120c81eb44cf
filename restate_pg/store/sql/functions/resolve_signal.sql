-- resolve_signal: deliver a signal (by index: an SDK endpoint's awakeable; or by name) to an
-- unfinished invocation; returns {"status": resolved | unknown | completed | already, "owner"}.
-- A signal is delivered once: a second one with the same index or name is ignored.
CREATE OR REPLACE FUNCTION {s}.resolve_signal(p jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    v_target text := p->>'invocation_id';
    v_index integer := (p->>'signal_index')::integer;
    v_name text := p->>'signal_name';
    v_owner text;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM {s}.invocation WHERE id = v_target) THEN
        RETURN jsonb_build_object('status', 'unknown');
    END IF;
    IF NOT EXISTS (SELECT 1 FROM {s}.task WHERE invocation_id = v_target) THEN
        RETURN jsonb_build_object('status', 'completed');
    END IF;
    IF (v_index IS NOT NULL AND (
            EXISTS (SELECT 1 FROM {s}.journal WHERE invocation_id = v_target AND completes = -v_index)
         OR EXISTS (SELECT 1 FROM {s}.notification WHERE invocation_id = v_target AND command_index = -v_index)))
       OR (v_name IS NOT NULL AND (
            EXISTS (SELECT 1 FROM {s}.journal WHERE invocation_id = v_target AND entry_type = 'Signal'
                                                AND params->>'signal_name' = v_name)
         OR EXISTS (SELECT 1 FROM {s}.notification WHERE invocation_id = v_target AND signal_name = v_name))) THEN
        RETURN jsonb_build_object('status', 'already');
    END IF;
    INSERT INTO {s}.notification (invocation_id, command_index, signal_name, value, failure_code, failure_message,
                                  failure_metadata)
    VALUES (v_target, -v_index, v_name, decode(p->>'value', 'base64'), (p->>'failure_code')::integer,
            p->>'failure_message', p->'failure_metadata');
    UPDATE {s}.task
       SET wakeups = wakeups + 1,
           status = CASE WHEN status = 'suspended' THEN 'ready' ELSE status END,
           run_at = CASE WHEN status = 'suspended' THEN now() ELSE run_at END
     WHERE invocation_id = v_target
    RETURNING lease_owner INTO v_owner;
    RETURN jsonb_build_object('status', 'resolved', 'owner', v_owner);
END
$$;
