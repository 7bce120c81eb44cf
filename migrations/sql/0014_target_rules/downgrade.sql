-- Revision 0014 (0014_target_rules), downgrade. Frozen once released, never edited (migrations/README.md).
-- Back to rules on scopes only: the functions and view of 0012/0010, the triggers and index of 0012.
-- claim_flow: lease up to p_limit due tasks under flow control (scoped, or with a priority) to a
-- worker, highest priority first (a task gains one priority point per 10 s it waits, so that low
-- priorities never starve), each only if every rule of its scope and limit key admits it: fewer
-- leased tasks than the rule's concurrency, a token of its rate (first attempts only). The scope's
-- counter row is the mutex of its claims (locked, or skipped when another claim holds it), and
-- usage is counted from the leases themselves, so that whatever ends a lease (completion,
-- suspension, backoff, pause, kill, reaping) frees the slot in its own transaction.
CREATE OR REPLACE FUNCTION "{schema}".claim_flow(p_owner text, p_services text[], p_limit integer, p_deployments text[],
                                          p_fresh text[], p_deployment text)
RETURNS TABLE (invocation_id text, epoch integer, attempt integer, wakeups bigint, previous_status text,
               pinned_now boolean, lag float8)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    v_task record;
    v_rule "{schema}".flow_rule;
    v_claimed integer := 0;
    v_seen integer := 0;
    v_skip text[] := '{}';  -- scopes whose mutex another claim holds, and "scope/key@level" found full
    v_parts text[];
    v_key text;
    v_level integer;
    v_used integer;
    v_tokens float8;
    v_take text[];
    v_admit boolean;
BEGIN
    FOR v_task IN
        SELECT t.invocation_id AS id, t.status, t.deployment_id, t.run_at, t.scope, COALESCE(t.limit_key, '') AS limit_key,
               t.attempt AS attempts
          FROM "{schema}".task t
         WHERE t.lease_owner IS NULL AND t.run_at <= now() AND t.status <> 'scheduled'
           AND (t.scope IS NOT NULL OR t.priority <> 0)
           AND t.service = ANY(p_services)
           AND ((t.deployment_id IS NULL AND t.service = ANY(p_fresh)) OR t.deployment_id = ANY(p_deployments))
           AND NOT EXISTS (
               SELECT 1 FROM "{schema}".invocation i
                WHERE i.id = t.invocation_id AND i.handler_ty = 'exclusive'
                  AND NOT EXISTS (SELECT 1 FROM "{schema}".object_lock l
                                   WHERE l.service = i.service AND l.key = i.key AND l.invocation_id = i.id))
         ORDER BY t.priority + EXTRACT(EPOCH FROM now() - t.run_at) / 10 DESC, t.run_at
           FOR UPDATE OF t SKIP LOCKED
    LOOP
        EXIT WHEN v_claimed >= p_limit OR v_seen >= 256;
        v_seen := v_seen + 1;
        v_take := '{}';
        IF v_task.scope IS NOT NULL THEN
            CONTINUE WHEN v_task.scope = ANY(v_skip);
            INSERT INTO "{schema}".flow_counter (scope, limit_key) VALUES (v_task.scope, '') ON CONFLICT DO NOTHING;
            PERFORM 1 FROM "{schema}".flow_counter c WHERE c.scope = v_task.scope AND c.limit_key = '' FOR UPDATE SKIP LOCKED;
            IF NOT FOUND THEN
                v_skip := v_skip || v_task.scope;
                CONTINUE;
            END IF;
            v_parts := CASE WHEN v_task.limit_key = '' THEN '{}'::text[] ELSE string_to_array(v_task.limit_key, '/') END;
            v_admit := true;
            FOR v_level IN 0 .. least(coalesce(array_length(v_parts, 1), 0), 2) LOOP
                v_key := array_to_string(v_parts[1:v_level], '/');
                IF (v_task.scope || '/' || v_key || '@' || v_level) = ANY(v_skip) THEN
                    v_admit := false;
                    EXIT;
                END IF;
                v_rule := "{schema}".flow_rule_for(v_task.scope, v_task.limit_key, v_level);
                CONTINUE WHEN v_rule.pattern IS NULL;
                IF v_rule.concurrency IS NOT NULL THEN
                    SELECT count(*) INTO v_used FROM "{schema}".task u
                     WHERE u.scope = v_task.scope AND u.lease_owner IS NOT NULL
                       AND (v_level = 0 OR (v_level = 1 AND split_part(u.limit_key, '/', 1) = v_key)
                            OR (v_level = 2 AND u.limit_key = v_key));
                    IF v_used >= v_rule.concurrency THEN
                        v_skip := v_skip || (v_task.scope || '/' || v_key || '@' || v_level);
                        v_admit := false;
                        EXIT;
                    END IF;
                END IF;
                IF v_rule.rate IS NOT NULL AND v_task.attempts = 0 THEN
                    INSERT INTO "{schema}".flow_counter (scope, limit_key) VALUES (v_task.scope, v_key) ON CONFLICT DO NOTHING;
                    SELECT least(v_rule.burst::float8, COALESCE(c.tokens, v_rule.burst::float8)
                                 + greatest(0, EXTRACT(EPOCH FROM clock_timestamp() - COALESCE(c.refilled_at, clock_timestamp())))
                                   * 1000 * v_rule.rate / v_rule.rate_interval_ms)
                      INTO v_tokens FROM "{schema}".flow_counter c WHERE c.scope = v_task.scope AND c.limit_key = v_key;
                    IF v_tokens < 1 THEN
                        v_skip := v_skip || (v_task.scope || '/' || v_key || '@' || v_level);
                        v_admit := false;
                        EXIT;
                    END IF;
                    v_take := v_take || v_key;
                END IF;
            END LOOP;
            CONTINUE WHEN NOT v_admit;
            IF array_length(v_take, 1) > 0 THEN  -- a token of each rate: the bucket refilled up to now, less one
                UPDATE "{schema}".flow_counter c
                   SET tokens = least(r.burst::float8, COALESCE(c.tokens, r.burst::float8)
                                 + greatest(0, EXTRACT(EPOCH FROM clock_timestamp() - COALESCE(c.refilled_at, clock_timestamp())))
                                   * 1000 * r.rate / r.rate_interval_ms) - 1,
                       refilled_at = clock_timestamp()
                  FROM unnest(v_take) k(key)
                  CROSS JOIN LATERAL "{schema}".flow_rule_for(v_task.scope, v_task.limit_key,
                                                       CASE WHEN k.key = '' THEN 0 ELSE array_length(string_to_array(k.key, '/'), 1) END) r
                 WHERE c.scope = v_task.scope AND c.limit_key = k.key;
            END IF;
        END IF;
        UPDATE "{schema}".task t
           SET lease_owner = p_owner, epoch = t.epoch + 1, attempt = t.attempt + 1,
               status = 'running', last_start_at = now(), deployment_id = p_deployment
         WHERE t.invocation_id = v_task.id
        RETURNING t.invocation_id, t.epoch, t.attempt, t.wakeups
          INTO invocation_id, epoch, attempt, wakeups;
        previous_status := v_task.status;
        pinned_now := v_task.deployment_id IS DISTINCT FROM p_deployment;
        lag := EXTRACT(EPOCH FROM now() - v_task.run_at)::float8;
        IF pinned_now THEN
            UPDATE "{schema}".invocation SET deployment_id = p_deployment WHERE id = v_task.id;
        END IF;
        v_claimed := v_claimed + 1;
        RETURN NEXT;
    END LOOP;
END
$$;

-- submit_invocation: create an invocation and its task, or queue it behind its object key;
-- returns its status (invoked | inboxed | scheduled), or NULL when the id already existed.
-- For an exclusive handler the caller holds the key's lock_object_key. Flow control: a scoped
-- submission is never leased at once (its claim checks the rules); with `check_backlog`, one
-- whose scope or key has as many queued as its backlog rule allows is refused ('rejected', nothing
-- written); one with a `debounce_key` replaces the input of the pending (not yet started) send
-- with the same target and key, and moves its start to now + its delay ('debounced:<its id>').
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
BEGIN
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
    IF v_owner IS NOT NULL AND v_status = 'invoked' THEN  -- starts at once: pinned to the owner's deployment
        v_deployment := p->>'deployment';
    END IF;
    INSERT INTO "{schema}".invocation (
        id, service, handler, key, service_ty, handler_ty, status, input, headers,
        idempotency_key, invoked_by, caller_id, caller_command, waiter, scheduled_start_at, deployment_id,
        scope, limit_key, priority, debounce_key)
    VALUES (v_id, v_service, p->>'handler', v_key, p->>'service_ty', p->>'handler_ty', v_status,
            decode(p->>'input', 'base64'), COALESCE(p->'headers', '{}'::jsonb),
            p->>'idempotency_key', p->>'invoked_by', p->>'caller_id', (p->>'caller_command')::integer,
            p->>'waiter', v_start_at, v_deployment,
            v_scope, v_limit_key, COALESCE((p->>'priority')::integer, 0), p->>'debounce_key')
    ON CONFLICT (id) DO NOTHING;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    IF v_status = 'inboxed' THEN
        INSERT INTO "{schema}".inbox (service, key, invocation_id) VALUES (v_service, v_key, v_id);
        RETURN v_status;
    END IF;
    IF v_status = 'invoked' AND v_exclusive THEN
        INSERT INTO "{schema}".object_lock (service, key, invocation_id) VALUES (v_service, v_key, v_id);
    END IF;
    IF v_status = 'invoked' AND v_owner IS NOT NULL THEN  -- leased at once to the submitting worker
        INSERT INTO "{schema}".task (invocation_id, service, status, run_at, lease_owner, epoch, attempt, last_start_at,
                              deployment_id)
        VALUES (v_id, v_service, 'running', now(), v_owner, 1, 1, now(), v_deployment);
    ELSE
        INSERT INTO "{schema}".task (invocation_id, service, status, run_at, scope, limit_key, priority)
        VALUES (v_id, v_service, CASE WHEN v_status = 'scheduled' THEN 'scheduled' ELSE 'ready' END,
                COALESCE(v_start_at, now()), v_scope, v_limit_key, COALESCE((p->>'priority')::integer, 0));
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
-- is made ready for a claim, which checks its rules, and NULL returned to p_owner.
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
    RETURNING deployment_id, scope, limit_key, priority INTO v_pinned, v_scope, v_limit_key, v_priority;
    IF v_pinned IS DISTINCT FROM v_deployment OR v_scope IS NOT NULL OR v_priority <> 0 THEN
        v_owner := NULL;
        v_deployment := v_pinned;
    END IF;
    IF v_owner IS NULL THEN
        INSERT INTO "{schema}".task (invocation_id, service, status, run_at, deployment_id, scope, limit_key, priority)
        VALUES (v_next, p_service, 'ready', now(), v_deployment, v_scope, v_limit_key, v_priority);
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

-- flush: apply one attempt's buffered writes and its outcome, fenced by its lease. Locks are
-- taken in the documented order: own task row (fence), the caller's task row, object keys in
-- the order given (sorted by the client), so that flushes never wait on each other in a cycle.
CREATE OR REPLACE FUNCTION "{schema}".flush(p jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    v_id text := p->>'id';
    v_outcome jsonb := p->'outcome';
    v_kind text := p->'outcome'->>'kind';
    v_result jsonb := '{}'::jsonb;
    v_submitted jsonb := '[]'::jsonb;
    v_text text;
    v_item jsonb;
    v_resolved jsonb;
    v_woken jsonb := '[]'::jsonb;
    v_answers jsonb := '{}'::jsonb;
BEGIN
    IF p->'create' IS NOT NULL THEN  -- created by its first flush, leased to this attempt
        PERFORM "{schema}".submit_invocation(p->'create');
    END IF;
    IF p ? 'promise_key' THEN  -- sections absent from the request cost nothing: this is the hot path
        FOR v_text IN SELECT DISTINCT value->>'name' AS name
                        FROM jsonb_array_elements(COALESCE(p->'promise_gets', '[]'::jsonb)
                                                  || COALESCE(p->'promise_completions', '[]'::jsonb))
                       ORDER BY name LOOP
            PERFORM "{schema}".lock_promise(p->'promise_key'->>0, p->'promise_key'->>1, v_text);
        END LOOP;
    END IF;
    PERFORM "{schema}".fence(v_id, p->>'owner', (p->>'epoch')::integer);

    IF v_kind = 'complete' AND v_outcome->>'caller_id' IS NOT NULL THEN
        v_text := "{schema}".deliver_notification(  -- the result, to the caller's mailbox
            v_outcome->>'caller_id', (v_outcome->>'caller_command')::integer,
            decode(v_outcome->>'output', 'base64'), (v_outcome->>'failure_code')::integer,
            v_outcome->>'failure_message', v_outcome->'failure_metadata');
        v_result := v_result || jsonb_build_object('caller_owner', v_text);
    END IF;

    IF p ? 'locks' THEN
        FOR v_item IN SELECT value FROM jsonb_array_elements(p->'locks') LOOP
            PERFORM "{schema}".lock_object_key(v_item->>0, v_item->>1);
        END LOOP;
    END IF;

    IF p ? 'journal' THEN  -- append_journal: record the journal entries
        INSERT INTO "{schema}".journal (invocation_id, index, command_index, completes, entry_type, name, params,
                                 completed, value, failure_code, failure_message, failure_metadata,
                                 sleep_wakeup_at, message)
        SELECT v_id, (j->>'index')::integer, (j->>'command_index')::integer, (j->>'completes')::integer,
               j->>'entry_type', j->>'name', j->'params', COALESCE((j->>'completed')::boolean, false),
               decode(j->>'value', 'base64'), (j->>'failure_code')::integer, j->>'failure_message',
               j->'failure_metadata', (j->>'sleep_wakeup_at')::timestamptz, decode(j->>'message', 'base64')
          FROM jsonb_array_elements(p->'journal') AS j;
    END IF;

    IF p ? 'state' THEN  -- set_state / clear_state / clear_all_state, in the handler's order
        FOR v_item IN SELECT value FROM jsonb_array_elements(p->'state') LOOP
            IF v_item->>'op' = 'set' THEN
                INSERT INTO "{schema}".state_entry (service, key, name, value)
                VALUES (v_item->>'service', v_item->>'key', v_item->>'name', decode(v_item->>'value', 'base64'))
                ON CONFLICT (service, key, name) DO UPDATE SET value = EXCLUDED.value;
            ELSIF v_item->>'op' = 'clear' THEN
                DELETE FROM "{schema}".state_entry
                 WHERE service = v_item->>'service' AND key = v_item->>'key' AND name = v_item->>'name';
            ELSE
                DELETE FROM "{schema}".state_entry WHERE service = v_item->>'service' AND key = v_item->>'key';
            END IF;
        END LOOP;
    END IF;

    IF p ? 'submissions' THEN
        FOR v_item IN SELECT value FROM jsonb_array_elements(p->'submissions') LOOP
            v_text := "{schema}".submit_invocation(v_item);
            IF v_text IS NULL AND v_item->>'caller_id' IS NOT NULL THEN
                IF v_item->>'handler_ty' = 'workflow' THEN  -- a workflow runs once per id
                    v_answers := v_answers || jsonb_build_object(v_item->>'caller_command', jsonb_build_object(
                        'completed', true, 'failure_code', 409,
                        'failure_message', 'the workflow method was already invoked'));
                ELSE  -- same idempotency key: attach to the first, get its result now or at its end
                    v_answers := v_answers || jsonb_build_object(v_item->>'caller_command', "{schema}".attach_invocation(
                        v_item->>'id', v_id, (v_item->>'caller_command')::integer));
                END IF;
            END IF;
            v_submitted := v_submitted || jsonb_build_array("{schema}".started(v_item, v_text));
        END LOOP;
    END IF;
    v_result := v_result || jsonb_build_object('submitted', v_submitted);

    IF p ? 'resolutions' THEN
        FOR v_item IN SELECT value FROM jsonb_array_elements(p->'resolutions') LOOP
            v_resolved := "{schema}".resolve_awakeable(v_item);
            IF v_resolved->>'status' = 'resolved' THEN
                v_woken := v_woken || jsonb_build_array(jsonb_build_array(v_item->>'invocation_id', v_resolved->'owner'));
            END IF;
        END LOOP;
    END IF;
    IF p ? 'signals' THEN  -- signals for other invocations (SDK endpoints' awakeables, named signals)
        FOR v_item IN SELECT value FROM jsonb_array_elements(p->'signals') LOOP
            v_resolved := "{schema}".resolve_signal(v_item);
            IF v_resolved->>'status' = 'resolved' THEN
                v_woken := v_woken || jsonb_build_array(jsonb_build_array(v_item->>'invocation_id', v_resolved->'owner'));
            END IF;
        END LOOP;
    END IF;
    IF p ? 'promise_completions' THEN
        FOR v_item IN SELECT value FROM jsonb_array_elements(p->'promise_completions') LOOP
            v_resolved := "{schema}".complete_promise(p->'promise_key'->>0, p->'promise_key'->>1,
                                               v_item || jsonb_build_object('invocation_id', v_id));
            v_woken := v_woken || (v_resolved->'woken');
            v_answers := v_answers || jsonb_build_object(v_item->>'command', v_resolved->>'status');
        END LOOP;
    END IF;
    IF p ? 'promise_gets' THEN
        FOR v_item IN SELECT value FROM jsonb_array_elements(p->'promise_gets') LOOP
            v_answers := v_answers || jsonb_build_object(v_item->>'command', "{schema}".get_promise(
                p->'promise_key'->>0, p->'promise_key'->>1, v_item->>'name', v_id, (v_item->>'command')::integer,
                COALESCE((v_item->>'peek')::boolean, false)));
        END LOOP;
    END IF;
    IF p ? 'cancels' THEN
        FOR v_text IN SELECT value FROM jsonb_array_elements_text(p->'cancels') LOOP
            v_resolved := "{schema}".cancel_invocation(v_text);
            v_woken := v_woken || COALESCE(v_resolved->'woken', '[]'::jsonb);
        END LOOP;
    END IF;
    IF p ? 'attaches' THEN
        FOR v_item IN SELECT value FROM jsonb_array_elements(p->'attaches') LOOP
            v_answers := v_answers || jsonb_build_object(v_item->>'command', "{schema}".attach_invocation(
                v_item->>'target', v_id, (v_item->>'command')::integer));
        END LOOP;
    END IF;
    v_result := v_result || jsonb_build_object('woken', v_woken, 'answers', v_answers);

    IF p->'consumed' IS NOT NULL THEN  -- delete_notifications: mailbox rows now in the journal
        DELETE FROM "{schema}".notification
         WHERE seq IN (SELECT value::bigint FROM jsonb_array_elements_text(p->'consumed'));
    END IF;

    IF v_kind = 'suspend' THEN
        -- suspend_task: give up the lease until a timer is due or a notification arrives
        UPDATE "{schema}".task
           SET lease_owner = NULL, status = 'suspended',
               run_at = COALESCE((v_outcome->>'wake_at')::timestamptz, 'infinity')
         WHERE invocation_id = v_id AND wakeups = (v_outcome->>'wakeups')::bigint;
        v_result := v_result || jsonb_build_object('suspended', FOUND);
    ELSIF v_kind = 'retry' THEN
        -- retry_task: give up the lease after a retryable failure, to back off or to pause
        UPDATE "{schema}".task
           SET lease_owner = NULL, status = v_outcome->>'status',
               run_at = CASE WHEN v_outcome->>'status' = 'paused' THEN 'infinity'
                             ELSE now() + (v_outcome->>'delay_ms')::bigint * interval '1 millisecond' END,
               last_failure = v_outcome->>'failure', last_failure_code = (v_outcome->>'failure_code')::integer
         WHERE invocation_id = v_id;
    ELSIF v_kind = 'complete' THEN
        -- complete_invocation: store the result; the process waiting for it is told by the client
        UPDATE "{schema}".invocation
           SET status = 'completed', completed_at = now(), modified_at = now(),
               result = CASE WHEN v_outcome->>'failure_code' IS NULL THEN 'success' ELSE 'failure' END,
               output = decode(v_outcome->>'output', 'base64'),
               failure_code = (v_outcome->>'failure_code')::integer,
               failure_message = v_outcome->>'failure_message',
               failure_metadata = v_outcome->'failure_metadata',
               retain_until = now() + (v_outcome->>'retention_ms')::bigint * interval '1 millisecond'
         WHERE id = v_id
        RETURNING waiter INTO v_text;
        v_result := v_result || jsonb_build_object('waiter', v_text);
        FOR v_item IN  -- the handlers attached to this invocation
            SELECT jsonb_build_array(waiter_id, command_index) FROM "{schema}".invocation_waiter WHERE invocation_id = v_id
        LOOP
            v_woken := v_woken || jsonb_build_array(jsonb_build_array(v_item->>0, "{schema}".deliver_notification(
                v_item->>0, (v_item->>1)::integer, decode(v_outcome->>'output', 'base64'),
                (v_outcome->>'failure_code')::integer, v_outcome->>'failure_message', v_outcome->'failure_metadata')));
        END LOOP;
        DELETE FROM "{schema}".invocation_waiter WHERE invocation_id = v_id;
        v_result := v_result || jsonb_build_object('woken', v_woken);
        DELETE FROM "{schema}".task WHERE invocation_id = v_id;  -- delete_task: leaves the live-work table
        IF jsonb_typeof(v_outcome->'release_key') = 'array' THEN
            v_text := "{schema}".release_object_key(
                v_outcome->'release_key'->>0, v_outcome->'release_key'->>1, v_id, v_outcome->>'take_next_owner');
            IF v_text IS NOT NULL THEN  -- the next holder, to start at once when leased to this process
                v_result := v_result || jsonb_build_object('next_holder', (
                    SELECT jsonb_build_object(
                        'id', id, 'service', service, 'handler', handler, 'key', key,
                        'input', encode(input, 'base64'), 'headers', headers,
                        'idempotency_key', idempotency_key, 'caller_id', caller_id,
                        'caller_command', caller_command)
                      FROM "{schema}".invocation WHERE id = v_text));
            END IF;
        END IF;
    END IF;
    RETURN v_result;
END
$$;

DROP VIEW IF EXISTS "{schema}".sys_rules;
-- sys_rules: the flow-control rules, with the columns of Restate's table (pattern, concurrency,
-- description, disabled, version, last_modified) and restate-pg's other limits after them
CREATE OR REPLACE VIEW "{schema}".sys_rules AS
SELECT pattern, concurrency, description, disabled, version, last_modified,
       rate, rate_interval_ms, burst, backlog
  FROM "{schema}".flow_rule;

DROP TRIGGER IF EXISTS task_flow_released ON "{schema}".task;
CREATE TRIGGER task_flow_released AFTER UPDATE OF lease_owner ON "{schema}".task
    FOR EACH ROW WHEN ((OLD.scope IS NOT NULL OR OLD.priority <> 0) AND OLD.lease_owner IS NOT NULL AND NEW.lease_owner IS NULL)
    EXECUTE FUNCTION "{schema}".flow_released();

DROP TRIGGER IF EXISTS task_flow_deleted ON "{schema}".task;
CREATE TRIGGER task_flow_deleted AFTER DELETE ON "{schema}".task
    FOR EACH ROW WHEN ((OLD.scope IS NOT NULL OR OLD.priority <> 0) AND OLD.lease_owner IS NOT NULL)
    EXECUTE FUNCTION "{schema}".flow_released();

DROP INDEX IF EXISTS "{schema}".task_flow_target;
DROP INDEX IF EXISTS "{schema}".task_flow_due;
CREATE INDEX task_flow_due ON "{schema}".task (run_at) WHERE lease_owner IS NULL AND (scope IS NOT NULL OR priority <> 0);

DROP VIEW IF EXISTS "{schema}".sys_user_limits;
ALTER TABLE "{schema}".flow_rule DROP COLUMN IF EXISTS debounce_ms, DROP COLUMN IF EXISTS priority, DROP COLUMN IF EXISTS concurrency_per_key;
ALTER TABLE "{schema}".task DROP COLUMN IF EXISTS flow_key, DROP COLUMN IF EXISTS flow_target;

-- sys_user_limits: per scope and level of its limit keys (Restate's `level`: scope, l1, l2), the
-- rule that applies, its concurrency, how many run (usage), how many more may start (available)
-- and how many queue for it (num_waiters); rate-limited levels show their tokens left
CREATE OR REPLACE VIEW "{schema}".sys_user_limits AS
WITH keys AS (
    SELECT DISTINCT t.scope, 0 AS lvl, '' AS key FROM "{schema}".task t WHERE t.scope IS NOT NULL
    UNION
    SELECT DISTINCT t.scope, 1, split_part(t.limit_key, '/', 1) FROM "{schema}".task t
     WHERE t.scope IS NOT NULL AND COALESCE(t.limit_key, '') <> ''
    UNION
    SELECT DISTINCT t.scope, 2, t.limit_key FROM "{schema}".task t WHERE t.scope IS NOT NULL AND t.limit_key LIKE '%/%'
), counted AS (
    SELECT k.scope, k.lvl, k.key,
           count(*) FILTER (WHERE t.lease_owner IS NOT NULL)::bigint AS usage,
           count(*) FILTER (WHERE t.lease_owner IS NULL AND t.run_at <= now() AND t.status = 'ready')::bigint AS num_waiters
      FROM keys k JOIN "{schema}".task t ON t.scope = k.scope
       AND (k.lvl = 0 OR (k.lvl = 1 AND split_part(t.limit_key, '/', 1) = k.key) OR (k.lvl = 2 AND t.limit_key = k.key))
     GROUP BY k.scope, k.lvl, k.key
)
SELECT c.scope, CASE c.lvl WHEN 0 THEN 'scope' WHEN 1 THEN 'l1' ELSE 'l2' END AS level,
       NULLIF(c.key, '') AS limit_key, c.usage, r.concurrency AS concurrency_limit, r.pattern AS rule_pattern,
       CASE WHEN r.concurrency IS NULL THEN NULL ELSE greatest(r.concurrency - c.usage, 0) END AS available,
       c.num_waiters, r.rate, r.backlog, fc.tokens
  FROM counted c
  LEFT JOIN LATERAL "{schema}".flow_rule_for(c.scope, CASE WHEN c.lvl = 0 THEN '' ELSE c.key END, c.lvl) r ON r.pattern IS NOT NULL
  LEFT JOIN "{schema}".flow_counter fc ON fc.scope = c.scope AND fc.limit_key = c.key AND r.rate IS NOT NULL;
