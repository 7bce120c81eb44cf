-- Revision 0015 (0015_exact_flow_limits), downgrade. Frozen once released, never edited (migrations/README.md).
-- Back to 0014's submit_invocation and release_object_key (no locks around the rules' probe and the backlog count).
-- submit_invocation: create an invocation and its task, or queue it behind its object key;
-- returns its status (invoked | inboxed | scheduled), or NULL when the id already existed.
-- For an exclusive handler the caller holds the key's lock_object_key. Flow control: a scoped
-- submission is never leased at once (its claim checks the rules); with `check_backlog`, one
-- whose scope or key has as many queued as its backlog rule allows is refused ('rejected', nothing
-- written); one with a `debounce_key` replaces the input of the pending (not yet started) send
-- with the same target and key, and moves its start to now + its delay ('debounced:<its id>').
-- Target rules (on its service or handler): its task is marked (`flow_target`) for a claim that
-- checks them, with their backlog, default priority and debounce window; one the submitter asked
-- to run at once is then queued instead ('queued').
CREATE OR REPLACE FUNCTION "{schema}".submit_invocation(p jsonb)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    v_id text := p->>'id';
    v_service text := p->>'service';
    v_key text := p->>'key';
    v_owner text := p->>'owner';
    v_delay_ms bigint := (p->>'delay_ms')::bigint;
    v_exclusive boolean := p->>'handler_ty' = 'exclusive';
    v_status text := 'invoked';
    v_start_at timestamptz;
    v_deployment text;
    v_scope text := p->>'scope';
    v_limit_key text := p->>'limit_key';
    v_backlog integer;
    v_pending text;
    v_handler text := p->>'handler';
    v_target text;
    v_flow_key text;
    v_priority integer := COALESCE((p->>'priority')::integer, 0);
    v_rule record;
BEGIN
    -- target rules: one primary-key probe of flow_rule; nothing more when no rule names the service
    SELECT min(r.backlog) FILTER (WHERE r.backlog IS NOT NULL) AS backlog,
           (array_agg(r.priority ORDER BY r.level DESC) FILTER (WHERE r.priority IS NOT NULL))[1] AS priority,
           (array_agg(r.debounce_ms ORDER BY r.level DESC) FILTER (WHERE r.debounce_ms IS NOT NULL))[1] AS debounce_ms,
           count(*) AS n
      INTO v_rule
      FROM "{schema}".flow_rule r
     WHERE r.pattern IN ('service:' || v_service, 'service:' || v_service || '/' || v_handler) AND NOT r.disabled;
    IF v_rule.n > 0 THEN
        v_target := v_service || '/' || v_handler;
        v_flow_key := COALESCE(v_limit_key, v_key);
        IF v_priority = 0 THEN
            v_priority := COALESCE(v_rule.priority, 0);
        END IF;
        IF v_delay_ms IS NULL AND p->>'debounce_key' IS NOT NULL THEN
            v_delay_ms := v_rule.debounce_ms;
        END IF;
        IF v_rule.backlog IS NOT NULL AND (p->>'check_backlog')::boolean AND v_rule.backlog <= (
            SELECT count(*) FROM "{schema}".task q
             WHERE q.flow_target = v_target AND q.lease_owner IS NULL
        ) THEN
            RETURN 'rejected';
        END IF;
    END IF;
    IF v_scope IS NOT NULL THEN
        v_owner := NULL;  -- its claim checks the rules
        IF (p->>'check_backlog')::boolean THEN
            SELECT min(r.backlog) INTO v_backlog
              FROM generate_series(0, least(2, COALESCE(array_length(string_to_array(v_limit_key, '/'), 1), 0))) AS lvl(level)
              CROSS JOIN LATERAL "{schema}".flow_rule_for(v_scope, v_limit_key, lvl.level) r
             WHERE r.backlog IS NOT NULL
               AND r.backlog <= (SELECT count(*) FROM "{schema}".task q
                                  WHERE q.scope = v_scope AND q.lease_owner IS NULL
                                    AND (lvl.level = 0 OR (lvl.level = 1 AND split_part(q.limit_key, '/', 1) = split_part(v_limit_key, '/', 1))
                                         OR (lvl.level = 2 AND q.limit_key = v_limit_key)));
            IF v_backlog IS NOT NULL THEN
                RETURN 'rejected';
            END IF;
        END IF;
    END IF;
    IF p->>'debounce_key' IS NOT NULL AND v_delay_ms IS NOT NULL THEN
        PERFORM pg_advisory_xact_lock(hashtext(v_service || '/' || (p->>'handler')), hashtext(COALESCE(v_key, '') || '/' || (p->>'debounce_key')));
        UPDATE "{schema}".invocation i SET input = decode(p->>'input', 'base64'), headers = COALESCE(p->'headers', '{}'::jsonb),
                                    scheduled_start_at = now() + v_delay_ms * interval '1 millisecond', modified_at = now()
         WHERE i.service = v_service AND i.handler = p->>'handler' AND COALESCE(i.key, '') = COALESCE(v_key, '')
           AND i.debounce_key = p->>'debounce_key' AND i.status = 'scheduled'
        RETURNING i.id INTO v_pending;
        IF v_pending IS NOT NULL THEN
            UPDATE "{schema}".task SET run_at = now() + v_delay_ms * interval '1 millisecond'
             WHERE invocation_id = v_pending AND status = 'scheduled';
            RETURN 'debounced:' || v_pending;
        END IF;
    END IF;
    IF v_delay_ms IS NOT NULL THEN
        v_status := 'scheduled';
        v_start_at := now() + v_delay_ms * interval '1 millisecond';
    ELSIF v_exclusive AND EXISTS (
        SELECT 1 FROM "{schema}".object_lock WHERE service = v_service AND key = v_key
    ) THEN
        v_status := 'inboxed';
    END IF;
    IF v_target IS NOT NULL AND v_owner IS NOT NULL AND NOT COALESCE((p->>'running')::boolean, false) THEN
        v_owner := NULL;  -- its claim checks the rules (unless its attempt runs already: flush's `create`)
        IF v_status = 'invoked' THEN
            v_status := 'queued';
        END IF;
    END IF;
    IF v_owner IS NOT NULL AND v_status = 'invoked' THEN  -- starts at once: pinned to the owner's deployment
        v_deployment := p->>'deployment';
    END IF;
    INSERT INTO "{schema}".invocation (
        id, service, handler, key, service_ty, handler_ty, status, input, headers,
        idempotency_key, invoked_by, caller_id, caller_command, waiter, scheduled_start_at, deployment_id,
        scope, limit_key, priority, debounce_key)
    VALUES (v_id, v_service, p->>'handler', v_key, p->>'service_ty', p->>'handler_ty',
            CASE WHEN v_status = 'queued' THEN 'invoked' ELSE v_status END,
            decode(p->>'input', 'base64'), COALESCE(p->'headers', '{}'::jsonb),
            p->>'idempotency_key', p->>'invoked_by', p->>'caller_id', (p->>'caller_command')::integer,
            p->>'waiter', v_start_at, v_deployment,
            v_scope, v_limit_key, v_priority, p->>'debounce_key')
    ON CONFLICT (id) DO NOTHING;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    IF v_status = 'inboxed' THEN
        INSERT INTO "{schema}".inbox (service, key, invocation_id) VALUES (v_service, v_key, v_id);
        RETURN v_status;
    END IF;
    IF v_status IN ('invoked', 'queued') AND v_exclusive THEN
        INSERT INTO "{schema}".object_lock (service, key, invocation_id) VALUES (v_service, v_key, v_id);
    END IF;
    IF v_status = 'invoked' AND v_owner IS NOT NULL THEN  -- leased at once to the submitting worker
        INSERT INTO "{schema}".task (invocation_id, service, status, run_at, lease_owner, epoch, attempt, last_start_at,
                              deployment_id)
        VALUES (v_id, v_service, 'running', now(), v_owner, 1, 1, now(), v_deployment);
    ELSE
        INSERT INTO "{schema}".task (invocation_id, service, status, run_at, scope, limit_key, priority, flow_target, flow_key)
        VALUES (v_id, v_service, CASE WHEN v_status = 'scheduled' THEN 'scheduled' ELSE 'ready' END,
                COALESCE(v_start_at, now()), v_scope, v_limit_key, v_priority, v_target, v_flow_key);
    END IF;
    RETURN v_status;
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
