-- started: what the submitter of `p` needs to know: its status, and the eager state of its object
-- key when it is leased to the submitter at once.
CREATE OR REPLACE FUNCTION {s}.started(p jsonb, p_status text)
RETURNS jsonb LANGUAGE plpgsql AS $$
BEGIN
    IF p_status = 'invoked' AND p->>'owner' IS NOT NULL AND p->>'key' IS NOT NULL
       AND p->>'service_ty' <> 'service' THEN
        RETURN jsonb_build_object('status', p_status, 'state', {s}.eager_state(p->>'service', p->>'key'));
    END IF;
    RETURN jsonb_build_object('status', p_status);
END
$$;
