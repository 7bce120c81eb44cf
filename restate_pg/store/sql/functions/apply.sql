-- apply: run several requests (flushes, submissions, awakeable resolutions, signals) as one transaction, in order; returns
-- their results in order. A failing request (a fenced flush) fails them all.
--
-- The flushes that only append journal entries (a step's result, a sleep: most of a busy group)
-- go first, all together: fenced in one statement and appended in one (append_journal), a third
-- cheaper than a flush() each. They touch only their own invocations' rows, and no two requests of a
-- group are one attempt's, so no other request of the group depends on their order.
CREATE OR REPLACE FUNCTION {s}.apply(p_requests jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    v_request jsonb;
    v_position bigint;
    v_results jsonb := '[]'::jsonb;
    v_steps bigint[];
    v_step_flushes jsonb;
    v_held bigint;
    v_lost jsonb;
BEGIN
    WITH steps AS (  -- the journal-only flushes
        SELECT r.value->'flush' AS f, r.position
          FROM jsonb_array_elements(p_requests) WITH ORDINALITY AS r(value, position)
         WHERE r.value ? 'flush'
           AND NOT (r.value->'flush') ?| ARRAY['create', 'promise_key', 'outcome', 'locks', 'state', 'submissions',
                                               'resolutions', 'signals', 'promise_completions', 'promise_gets',
                                               'cancels', 'attaches', 'consumed']
    ), fenced AS (  -- fence() for each of them at once: their task rows share-locked, found by key
        SELECT t.lease_owner = s.f->>'owner' AND t.epoch = (s.f->>'epoch')::integer AS held  -- alone, so
          FROM steps s JOIN {s}.task t ON t.invocation_id = s.f->>'id'  -- that no plan scans a worker's leases
           FOR SHARE OF t
    )
    SELECT array_agg(s.position), jsonb_agg(s.f), (SELECT count(*) FROM fenced WHERE held)
      INTO v_steps, v_step_flushes, v_held
      FROM steps s;
    IF v_held < cardinality(v_steps) THEN  -- a lease lost, or a task gone: name the first as fence() does
        SELECT f INTO v_lost
          FROM jsonb_array_elements(v_step_flushes) AS f
         WHERE NOT EXISTS (SELECT FROM {s}.task t WHERE t.invocation_id = f->>'id'
                              AND t.lease_owner = f->>'owner' AND t.epoch = (f->>'epoch')::integer)
         LIMIT 1;
        RAISE EXCEPTION 'restate-pg: attempt % of invocation % lost its lease', v_lost->>'epoch', v_lost->>'id'
            USING ERRCODE = 'RPG01';
    END IF;
    IF v_steps IS NOT NULL THEN
        PERFORM {s}.append_journal(v_step_flushes);
    END IF;

    FOR v_request, v_position IN SELECT value, ordinality FROM jsonb_array_elements(p_requests) WITH ORDINALITY LOOP
        IF v_position = ANY(v_steps) THEN
            v_results := v_results || '[{"submitted": []}]'::jsonb;  -- appended above
        ELSIF v_request ? 'flush' THEN
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
