-- submit_invocation: create an invocation and its task, or queue it behind its object key;
-- returns its status (invoked | inboxed | scheduled), or NULL when the id already existed.
-- For an exclusive handler the caller holds the key's lock_object_key. Flow control: a scoped
-- submission is never leased at once (its claim checks the rules); with `check_backlog`, one
-- whose scope or key has as many queued as its backlog rule allows is refused ('rejected', nothing
-- written); one with a `debounce_key` replaces the input of the pending (not yet started) send
-- with the same target and key, and moves its start to now + its delay ('debounced:<its id>').
-- Target rules (on its service or handler): its task is marked (`flow_target`) for a claim that
-- checks them, with their backlog, default priority and debounce window; one the submitter asked
-- to run at once is then queued instead ('queued'). The service's target-rules lock, shared here
-- and taken exclusively by a rule's creation, makes the probe see the rule or commit before the
-- rule marks queued tasks; a backlog's lock makes its count and the insert one step.
CREATE OR REPLACE FUNCTION {s}.submit_invocation(p jsonb)
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
    PERFORM pg_advisory_xact_lock_shared(1919969027, hashtext(v_service));
    IF EXISTS (SELECT FROM {s}.flow_rule r  -- most services have none: no aggregates then
                WHERE r.pattern IN ('service:' || v_service, 'service:' || v_service || '/' || v_handler)
                  AND NOT r.disabled) THEN
        SELECT min(r.backlog) FILTER (WHERE r.level = 3) AS service_backlog,
               min(r.backlog) FILTER (WHERE r.level = 4) AS handler_backlog,
               (array_agg(r.priority ORDER BY r.level DESC) FILTER (WHERE r.priority IS NOT NULL))[1] AS priority,
               (array_agg(r.debounce_ms ORDER BY r.level DESC) FILTER (WHERE r.debounce_ms IS NOT NULL))[1] AS debounce_ms
          INTO v_rule
          FROM {s}.flow_rule r
         WHERE r.pattern IN ('service:' || v_service, 'service:' || v_service || '/' || v_handler) AND NOT r.disabled;
        v_target := v_service || '/' || v_handler;
        v_flow_key := COALESCE(v_limit_key, v_key);
        IF v_priority = 0 THEN
            v_priority := COALESCE(v_rule.priority, 0);
        END IF;
        IF v_delay_ms IS NULL AND p->>'debounce_key' IS NOT NULL THEN
            v_delay_ms := v_rule.debounce_ms;
        END IF;
        IF (p->>'check_backlog')::boolean AND (v_rule.service_backlog IS NOT NULL OR v_rule.handler_backlog IS NOT NULL) THEN
            PERFORM pg_advisory_xact_lock(1919969028, hashtext('service:' || v_service));  -- until the insert commits
            IF v_rule.handler_backlog <= (SELECT count(*) FROM {s}.task q
                                           WHERE q.flow_target = v_target AND q.lease_owner IS NULL)
               OR v_rule.service_backlog <= (SELECT count(*) FROM {s}.task q
                                              WHERE q.service = v_service AND q.flow_target IS NOT NULL AND q.lease_owner IS NULL) THEN
                RETURN 'rejected';
            END IF;
        END IF;
    END IF;
    IF v_scope IS NOT NULL THEN
        v_owner := NULL;  -- its claim checks the rules
        IF (p->>'check_backlog')::boolean AND EXISTS (
            SELECT 1 FROM generate_series(0, least(2, COALESCE(array_length(string_to_array(v_limit_key, '/'), 1), 0))) AS lvl(level)
             CROSS JOIN LATERAL {s}.flow_rule_for(v_scope, v_limit_key, lvl.level) r
             WHERE r.backlog IS NOT NULL) THEN
            PERFORM pg_advisory_xact_lock(1919969028, hashtext(v_scope));  -- until the insert commits
            SELECT min(r.backlog) INTO v_backlog
              FROM generate_series(0, least(2, COALESCE(array_length(string_to_array(v_limit_key, '/'), 1), 0))) AS lvl(level)
              CROSS JOIN LATERAL {s}.flow_rule_for(v_scope, v_limit_key, lvl.level) r
             WHERE r.backlog IS NOT NULL
               AND r.backlog <= (SELECT count(*) FROM {s}.task q
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
        UPDATE {s}.invocation i SET input = decode(p->>'input', 'base64'), headers = COALESCE(p->'headers', '{}'::jsonb),
                                    scheduled_start_at = now() + v_delay_ms * interval '1 millisecond', modified_at = now()
         WHERE i.service = v_service AND i.handler = p->>'handler' AND COALESCE(i.key, '') = COALESCE(v_key, '')
           AND i.debounce_key = p->>'debounce_key' AND i.status = 'scheduled'
        RETURNING i.id INTO v_pending;
        IF v_pending IS NOT NULL THEN
            UPDATE {s}.task SET run_at = now() + v_delay_ms * interval '1 millisecond'
             WHERE invocation_id = v_pending AND status = 'scheduled';
            RETURN 'debounced:' || v_pending;
        END IF;
    END IF;
    IF v_delay_ms IS NOT NULL THEN
        v_status := 'scheduled';
        v_start_at := now() + v_delay_ms * interval '1 millisecond';
    ELSIF v_exclusive THEN  -- nested: `v_exclusive AND EXISTS (...)` would run the query for every submission
        IF EXISTS (SELECT 1 FROM {s}.object_lock WHERE service = v_service AND key = v_key) THEN
            v_status := 'inboxed';
        END IF;
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
    INSERT INTO {s}.invocation (
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
        INSERT INTO {s}.inbox (service, key, invocation_id) VALUES (v_service, v_key, v_id);
        RETURN v_status;
    END IF;
    IF v_status IN ('invoked', 'queued') AND v_exclusive THEN
        INSERT INTO {s}.object_lock (service, key, invocation_id) VALUES (v_service, v_key, v_id);
    END IF;
    IF v_status = 'invoked' AND v_owner IS NOT NULL THEN  -- leased at once to the submitting worker
        INSERT INTO {s}.task (invocation_id, service, status, run_at, lease_owner, epoch, attempt, last_start_at,
                              deployment_id)
        VALUES (v_id, v_service, 'running', now(), v_owner, 1, 1, now(), v_deployment);
    ELSE
        INSERT INTO {s}.task (invocation_id, service, status, run_at, scope, limit_key, priority, flow_target, flow_key)
        VALUES (v_id, v_service, CASE WHEN v_status = 'scheduled' THEN 'scheduled' ELSE 'ready' END,
                COALESCE(v_start_at, now()), v_scope, v_limit_key, v_priority, v_target, v_flow_key);
    END IF;
    RETURN v_status;
END
$$;
