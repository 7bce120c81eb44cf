-- Revision 0018 (0018_stamped_entries), downgrade. Frozen once released, never edited (migrations/README.md).
-- The functions as the revision before left them, and none of its own.
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
    IF p->'create' IS NOT NULL THEN  -- created by its first flush, leased to this attempt (running already)
        PERFORM "{schema}".submit_invocation(p->'create' || '{"running": true}'::jsonb);
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
    PERFORM pg_advisory_xact_lock_shared(1919969027, hashtext(v_service));
    SELECT min(r.backlog) FILTER (WHERE r.level = 3) AS service_backlog,
           min(r.backlog) FILTER (WHERE r.level = 4) AS handler_backlog,
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
        IF (p->>'check_backlog')::boolean AND (v_rule.service_backlog IS NOT NULL OR v_rule.handler_backlog IS NOT NULL) THEN
            PERFORM pg_advisory_xact_lock(1919969028, hashtext('service:' || v_service));  -- until the insert commits
            IF v_rule.handler_backlog <= (SELECT count(*) FROM "{schema}".task q
                                           WHERE q.flow_target = v_target AND q.lease_owner IS NULL)
               OR v_rule.service_backlog <= (SELECT count(*) FROM "{schema}".task q
                                              WHERE q.service = v_service AND q.flow_target IS NOT NULL AND q.lease_owner IS NULL) THEN
                RETURN 'rejected';
            END IF;
        END IF;
    END IF;
    IF v_scope IS NOT NULL THEN
        v_owner := NULL;  -- its claim checks the rules
        IF (p->>'check_backlog')::boolean AND EXISTS (
            SELECT 1 FROM generate_series(0, least(2, COALESCE(array_length(string_to_array(v_limit_key, '/'), 1), 0))) AS lvl(level)
             CROSS JOIN LATERAL "{schema}".flow_rule_for(v_scope, v_limit_key, lvl.level) r
             WHERE r.backlog IS NOT NULL) THEN
            PERFORM pg_advisory_xact_lock(1919969028, hashtext(v_scope));  -- until the insert commits
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
-- apply: run several requests (flushes, submissions, awakeable resolutions, signals) as one transaction, in order; returns
-- their results in order. A failing request (a fenced flush) fails them all.
CREATE OR REPLACE FUNCTION "{schema}".apply(p_requests jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    v_request jsonb;
    v_results jsonb := '[]'::jsonb;
BEGIN
    FOR v_request IN SELECT value FROM jsonb_array_elements(p_requests) LOOP
        IF v_request ? 'flush' THEN
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
DROP FUNCTION IF EXISTS "{schema}".append_journal(jsonb);
