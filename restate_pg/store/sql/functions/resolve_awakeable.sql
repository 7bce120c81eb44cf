-- resolve_awakeable: complete an awakeable of an unfinished invocation with a value or a failure;
-- returns {"status": resolved | unknown | completed | already, "owner": process running it}.
-- The id's secret must match the one journaled with the awakeable. A second resolution is
-- ignored; should two race past this check, the invocation keeps the first it reads.
CREATE OR REPLACE FUNCTION {s}.resolve_awakeable(p jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    v_target text := p->>'invocation_id';
    v_command integer := (p->>'command_index')::integer;
BEGIN
    IF NOT EXISTS (
        SELECT 1 FROM {s}.journal
         WHERE invocation_id = v_target AND command_index = v_command AND entry_type = 'Awakeable'
           AND value = convert_to(p->>'id', 'UTF8')
    ) THEN
        RETURN jsonb_build_object('status', 'unknown');
    END IF;
    IF NOT EXISTS (SELECT 1 FROM {s}.task WHERE invocation_id = v_target) THEN
        RETURN jsonb_build_object('status', 'completed');
    END IF;
    IF EXISTS (SELECT 1 FROM {s}.journal WHERE invocation_id = v_target AND completes = v_command)
       OR EXISTS (SELECT 1 FROM {s}.notification WHERE invocation_id = v_target AND command_index = v_command) THEN
        RETURN jsonb_build_object('status', 'already');
    END IF;
    RETURN jsonb_build_object('status', 'resolved', 'owner', {s}.deliver_notification(
        v_target, v_command, decode(p->>'value', 'base64'), (p->>'failure_code')::integer,
        p->>'failure_message', p->'failure_metadata'));
END
$$;
