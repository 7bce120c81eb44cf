-- Revision 0019 (0019_planned_once), downgrade. Frozen once released, never edited (migrations/README.md).
-- The functions as the revisions before left them.
-- append_journal: record the journal entries of flushes (each {"id": ..., "journal": [...]}), in one
-- statement for a whole group (apply's journal-only flushes) or for one (flush()); a field an
-- entry leaves out is NULL, and its appended_at, when it has none, the transaction's now().
CREATE OR REPLACE FUNCTION "{schema}".append_journal(p_flushes jsonb)
RETURNS void LANGUAGE sql AS $$
    INSERT INTO "{schema}".journal (invocation_id, index, command_index, completes, entry_type, name, params,
                             completed, value, failure_code, failure_message, failure_metadata,
                             sleep_wakeup_at, message, appended_at)
    SELECT f.value->>'id', j.index, j.command_index, j.completes, j.entry_type, j.name, j.params,
           COALESCE(j.completed, false), decode(j.value, 'base64'), j.failure_code, j.failure_message,
           j.failure_metadata, j.sleep_wakeup_at, decode(j.message, 'base64'), COALESCE(j.appended_at, now())
      FROM jsonb_array_elements(p_flushes) AS f,
           jsonb_to_recordset(f.value->'journal') AS j(
               index integer, command_index integer, completes integer, entry_type text, name text,
               params jsonb, completed boolean, value text, failure_code integer, failure_message text,
               failure_metadata jsonb, sleep_wakeup_at timestamptz, message text, appended_at timestamptz);
$$;
-- apply: run several requests (flushes, submissions, awakeable resolutions, signals) as one transaction, in order; returns
-- their results in order. A failing request (a fenced flush) fails them all.
--
-- The flushes that only append journal entries (a step's result, a sleep: most of a busy group)
-- go first, all together: fenced in one statement and appended in one (append_journal), a third
-- cheaper than a flush() each. They touch only their own invocations' rows, and no two requests of a
-- group are one attempt's, so no other request of the group depends on their order.
CREATE OR REPLACE FUNCTION "{schema}".apply(p_requests jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    v_request jsonb;
    v_position bigint;
    v_results jsonb := '[]'::jsonb;
    v_steps bigint[];
    v_step_flushes jsonb;
    v_lost jsonb;
BEGIN
    WITH steps AS (  -- the journal-only flushes
        SELECT r.value->'flush' AS f, r.position
          FROM jsonb_array_elements(p_requests) WITH ORDINALITY AS r(value, position)
         WHERE r.value ? 'flush'
           AND NOT (r.value->'flush') ?| ARRAY['create', 'promise_key', 'outcome', 'locks', 'state', 'submissions',
                                               'resolutions', 'signals', 'promise_completions', 'promise_gets',
                                               'cancels', 'attaches', 'consumed']
    ), fenced AS (  -- fence() for each of them at once: their task rows share-locked, their leases held
        SELECT t.invocation_id
          FROM "{schema}".task t JOIN steps s ON t.invocation_id = s.f->>'id'
         WHERE t.lease_owner = s.f->>'owner' AND t.epoch = (s.f->>'epoch')::integer
           FOR SHARE OF t
    )
    SELECT array_agg(s.position), jsonb_agg(s.f),
           (array_agg(s.f) FILTER (WHERE s.f->>'id' NOT IN (SELECT invocation_id FROM fenced)))[1]
      INTO v_steps, v_step_flushes, v_lost
      FROM steps s;
    IF v_lost IS NOT NULL THEN  -- as fence() says it
        RAISE EXCEPTION 'restate-pg: attempt % of invocation % lost its lease', v_lost->>'epoch', v_lost->>'id'
            USING ERRCODE = 'RPG01';
    END IF;
    IF v_steps IS NOT NULL THEN
        PERFORM "{schema}".append_journal(v_step_flushes);
    END IF;

    FOR v_request, v_position IN SELECT value, ordinality FROM jsonb_array_elements(p_requests) WITH ORDINALITY LOOP
        IF v_position = ANY(v_steps) THEN
            v_results := v_results || '[{"submitted": []}]'::jsonb;  -- appended above
        ELSIF v_request ? 'flush' THEN
            v_results := v_results || jsonb_build_array("{schema}".flush(v_request->'flush'));
        ELSIF v_request ? 'kill' THEN
            v_results := v_results || jsonb_build_array("{schema}".kill_invocation(v_request->>'kill'));
        ELSIF v_request ? 'cancel' THEN
            v_results := v_results || jsonb_build_array("{schema}".cancel_invocation(v_request->>'cancel'));
        ELSIF v_request ? 'resolve' THEN
            v_results := v_results || jsonb_build_array("{schema}".resolve_awakeable(v_request->'resolve'));
        ELSIF v_request ? 'signal' THEN
            v_results := v_results || jsonb_build_array("{schema}".resolve_signal(v_request->'signal'));
        ELSE  -- a submission, with the object key's lock when the handler is exclusive
            IF v_request->'submit'->>'handler_ty' = 'exclusive' AND v_request->'submit'->>'delay_ms' IS NULL THEN
                PERFORM "{schema}".lock_object_key(v_request->'submit'->>'service', COALESCE(v_request->'submit'->>'key', ''));
            END IF;
            v_results := v_results || jsonb_build_array(
                "{schema}".started(v_request->'submit', "{schema}".submit_invocation(v_request->'submit')));
        END IF;
    END LOOP;
    RETURN v_results;
END
$$;
-- release_object_key: hand an object key to the head of its inbox, or free it; returns the
-- invocation that got the key, leased to p_owner when given (to run it at once, pinned to that
-- worker's deployment), else ready. One already pinned to another deployment (restarted with a
-- journal prefix) is made ready for its own deployment instead, and NULL returned to p_owner.
-- Only the key's holder may let it go: anyone else is refused with a warning, and nothing changes.
-- The caller holds the key's lock_object_key. One under flow control (scoped, or with a priority)
-- is made ready for a claim, which checks its rules, and NULL returned to p_owner; so is one whose
-- service or handler a rule names (marked with `flow_target`, as `submit_invocation` marks).
CREATE OR REPLACE FUNCTION "{schema}".release_object_key(p_service text, p_key text, p_holder text, p_owner text)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    v_next text;
    v_deployment text;
    v_pinned text;
    v_owner text := p_owner;
    v_holder text;
    v_scope text;
    v_limit_key text;
    v_priority integer;
    v_handler text;
    v_target text;
BEGIN
    SELECT invocation_id INTO v_holder FROM "{schema}".object_lock WHERE service = p_service AND key = p_key;
    IF v_holder IS DISTINCT FROM p_holder THEN
        RAISE WARNING 'restate-pg: invocation % does not hold object key %/% (held by %); the key is left as it is',
            p_holder, p_service, p_key, COALESCE(v_holder, 'nobody');
        RETURN NULL;
    END IF;
    DELETE FROM "{schema}".inbox
     WHERE seq = (SELECT seq FROM "{schema}".inbox WHERE service = p_service AND key = p_key ORDER BY seq LIMIT 1)
    RETURNING invocation_id INTO v_next;
    IF v_next IS NULL THEN
        DELETE FROM "{schema}".object_lock WHERE service = p_service AND key = p_key;
        RETURN NULL;
    END IF;
    UPDATE "{schema}".object_lock SET invocation_id = v_next, acquired_at = now()
     WHERE service = p_service AND key = p_key;
    IF v_owner IS NOT NULL THEN
        SELECT deployment_id INTO v_deployment FROM "{schema}".worker WHERE id = v_owner;
    END IF;
    UPDATE "{schema}".invocation SET status = 'invoked', modified_at = now(), deployment_id = COALESCE(deployment_id, v_deployment)
     WHERE id = v_next
    RETURNING deployment_id, scope, limit_key, priority, handler INTO v_pinned, v_scope, v_limit_key, v_priority, v_handler;
    PERFORM pg_advisory_xact_lock_shared(1919969027, hashtext(p_service));  -- as submit_invocation's probe
    IF EXISTS (SELECT 1 FROM "{schema}".flow_rule r
                WHERE r.pattern IN ('service:' || p_service, 'service:' || p_service || '/' || v_handler) AND NOT r.disabled) THEN
        v_target := p_service || '/' || v_handler;
    END IF;
    IF v_pinned IS DISTINCT FROM v_deployment OR v_scope IS NOT NULL OR v_priority <> 0 OR v_target IS NOT NULL THEN
        v_owner := NULL;
        v_deployment := v_pinned;
    END IF;
    IF v_owner IS NULL THEN
        INSERT INTO "{schema}".task (invocation_id, service, status, run_at, deployment_id, scope, limit_key, priority,
                              flow_target, flow_key)
        VALUES (v_next, p_service, 'ready', now(), v_deployment, v_scope, v_limit_key, v_priority,
                v_target, CASE WHEN v_target IS NOT NULL THEN COALESCE(v_limit_key, p_key) END);
        IF p_owner IS NOT NULL THEN
            RETURN NULL;
        END IF;
    ELSE
        INSERT INTO "{schema}".task (invocation_id, service, status, run_at, lease_owner, epoch, attempt, last_start_at,
                              deployment_id)
        VALUES (v_next, p_service, 'running', now(), v_owner, 1, 1, now(), v_deployment);
    END IF;
    RETURN v_next;
END
$$;
