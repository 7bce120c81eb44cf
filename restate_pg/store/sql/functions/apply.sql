-- apply: run several requests (flushes, submissions, awakeable resolutions, signals) as one transaction, in order; returns
-- their results in order. A failing request (a fenced flush) fails them all.
CREATE OR REPLACE FUNCTION {s}.apply(p_requests jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    v_request jsonb;
    v_results jsonb := '[]'::jsonb;
BEGIN
    FOR v_request IN SELECT value FROM jsonb_array_elements(p_requests) LOOP
        IF v_request ? 'flush' THEN
            v_results := v_results || jsonb_build_array({s}.flush(v_request->'flush'));
        ELSIF v_request ? 'kill' THEN
            v_results := v_results || jsonb_build_array({s}.kill_invocation(v_request->>'kill'));
        ELSIF v_request ? 'cancel' THEN
            v_results := v_results || jsonb_build_array({s}.cancel_invocation(v_request->>'cancel'));
        ELSIF v_request ? 'resolve' THEN
            v_results := v_results || jsonb_build_array({s}.resolve_awakeable(v_request->'resolve'));
        ELSIF v_request ? 'signal' THEN
            v_results := v_results || jsonb_build_array({s}.resolve_signal(v_request->'signal'));
        ELSE  -- a submission, with the object key's lock when the handler is exclusive
            IF v_request->'submit'->>'handler_ty' = 'exclusive' AND v_request->'submit'->>'delay_ms' IS NULL THEN
                PERFORM {s}.lock_object_key(v_request->'submit'->>'service', COALESCE(v_request->'submit'->>'key', ''));
            END IF;
            v_results := v_results || jsonb_build_array(
                {s}.started(v_request->'submit', {s}.submit_invocation(v_request->'submit')));
        END IF;
    END LOOP;
    RETURN v_results;
END
$$;
