-- Revision 0012 (0012_flow_control), upgrade. Frozen once released, never edited (migrations/README.md).
-- Flow control (docs/flow-control.md): scope, limit key and priority of invocations and their
-- tasks, debounce keys, the rules and the counters of rate limits; the claim of tasks under flow
-- control and the hint a freed slot sends; the introspection views of rules and queues.
ALTER TABLE "{schema}".invocation
    ADD COLUMN scope TEXT,
    ADD COLUMN limit_key TEXT,
    ADD COLUMN priority INTEGER DEFAULT 0 NOT NULL,
    ADD COLUMN debounce_key TEXT;

ALTER TABLE "{schema}".task
    ADD COLUMN scope TEXT,
    ADD COLUMN limit_key TEXT,
    ADD COLUMN priority INTEGER DEFAULT 0 NOT NULL;

-- what claim_flow looks at: unleased tasks under flow control (none: the claim's probe is one empty index lookup)
CREATE INDEX task_flow_due ON "{schema}".task (run_at) WHERE lease_owner IS NULL AND (scope IS NOT NULL OR priority <> 0);

-- a scope's (and limit key's) leased and queued tasks: usage and backlog counts
CREATE INDEX task_scope ON "{schema}".task (scope, limit_key) WHERE scope IS NOT NULL;

-- at most one pending (scheduled) debounced send per target and debounce key
CREATE UNIQUE INDEX invocation_debounce ON "{schema}".invocation (service, handler, (COALESCE(key, '')), debounce_key)
    WHERE debounce_key IS NOT NULL AND status = 'scheduled';

CREATE TABLE "{schema}".flow_rule (
    pattern TEXT NOT NULL,
    level INTEGER NOT NULL,
    scope_part TEXT NOT NULL,
    l1_part TEXT,
    l2_part TEXT,
    rank INTEGER NOT NULL,
    concurrency INTEGER,
    rate INTEGER,
    rate_interval_ms BIGINT,
    burst INTEGER,
    backlog INTEGER,
    description TEXT,
    disabled BOOLEAN DEFAULT false NOT NULL,
    version INTEGER DEFAULT 1 NOT NULL,
    last_modified TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
    CONSTRAINT flow_rule_pkey PRIMARY KEY (pattern)
);

CREATE TABLE "{schema}".flow_counter (
    scope TEXT NOT NULL,
    limit_key TEXT NOT NULL,
    tokens DOUBLE PRECISION,
    refilled_at TIMESTAMP WITH TIME ZONE,
    CONSTRAINT flow_counter_pkey PRIMARY KEY (scope, limit_key)
);

-- flow_rule_for: the most specific enabled rule of one level (0: the scope, 1: the limit key's
-- first part, 2: its second) that matches a scope and limit key, as Restate ranks patterns
-- (an exact part outranks `*`, the scope most, then the first part, then the second).
CREATE OR REPLACE FUNCTION "{schema}".flow_rule_for(p_scope text, p_limit_key text, p_level integer)
RETURNS "{schema}".flow_rule LANGUAGE sql STABLE AS $$
    SELECT r.* FROM "{schema}".flow_rule r
     WHERE NOT r.disabled AND r.level = p_level
       AND (r.scope_part = '*' OR r.scope_part = p_scope)
       AND (p_level < 1 OR r.l1_part = '*' OR r.l1_part = split_part(p_limit_key, '/', 1))
       AND (p_level < 2 OR r.l2_part = '*' OR r.l2_part = split_part(p_limit_key, '/', 2))
     ORDER BY r.rank DESC
     LIMIT 1
$$;

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

-- flow_released: a task under flow control gave its lease up (completed, suspended, failed,
-- paused, killed, reaped): its slot is free, so workers are hinted to claim what waits for it.
-- A trigger (task_flow_released), so that every path that ends a lease hints without saying so;
-- the hint is sent at commit, with the transaction that freed the slot.
CREATE OR REPLACE FUNCTION "{schema}".flow_released()
RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('rpg_' || lower(TG_TABLE_SCHEMA) || '_work', '');
    RETURN NULL;
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

CREATE TRIGGER task_flow_released AFTER UPDATE OF lease_owner ON "{schema}".task
    FOR EACH ROW WHEN ((OLD.scope IS NOT NULL OR OLD.priority <> 0) AND OLD.lease_owner IS NOT NULL AND NEW.lease_owner IS NULL)
    EXECUTE FUNCTION "{schema}".flow_released();

CREATE TRIGGER task_flow_deleted AFTER DELETE ON "{schema}".task
    FOR EACH ROW WHEN ((OLD.scope IS NOT NULL OR OLD.priority <> 0) AND OLD.lease_owner IS NOT NULL)
    EXECUTE FUNCTION "{schema}".flow_released();

-- sys_invocation: every known invocation with its target, status, retries and result
-- Three branches, one per place an invocation's status lives: live ones (scheduled or invoked) have a
-- task row whose status is already in Restate's vocabulary; inboxed and completed ones have none. A
-- filter on status drops the branches that cannot match.
CREATE OR REPLACE VIEW "{schema}".sys_invocation AS
SELECT i.id AS id,
       i.service || '/' || COALESCE(i.key || '/', '') || i.handler AS target,
       i.service AS target_service_name,
       i.key AS target_service_key,
       i.handler AS target_handler_name,
       i.service_ty AS target_service_ty,
       t.status AS status,
       NULL::text AS vqueue_id,
       i.scope,
       i.limit_key,
       i.idempotency_key AS idempotency_key,
       CASE WHEN i.restarted_from IS NOT NULL THEN 'restart_as_new' ELSE i.invoked_by END AS invoked_by,
       c.service AS invoked_by_service_name,
       i.caller_id AS invoked_by_id,
       NULL::text AS invoked_by_subscription_id,
       c.service || '/' || COALESCE(c.key || '/', '') || c.handler AS invoked_by_target,
       i.restarted_from AS restarted_from,
       i.deployment_id AS pinned_deployment_id,
       NULL::integer AS pinned_service_protocol_version,
       NULL::text AS trace_id,
       (SELECT count(*) FROM "{schema}".journal j WHERE j.invocation_id = i.id)::integer + 1 + (i.status = 'completed')::integer AS journal_size,
       (SELECT count(*) FROM "{schema}".journal j WHERE j.invocation_id = i.id AND j.command_index IS NOT NULL)::integer + 1 + (i.status = 'completed')::integer AS journal_commands_size,
       i.created_at AS created_at,
       NULL::text AS created_using_restate_version,
       i.modified_at AS modified_at,
       NULL::timestamptz AS inboxed_at,
       CASE WHEN i.scheduled_start_at IS NOT NULL THEN i.created_at END AS scheduled_at,
       i.scheduled_start_at AS scheduled_start_at,
       NULL::timestamptz AS running_at,
       i.completed_at AS completed_at,
       i.retain_until - i.completed_at AS completion_retention,
       i.retain_until - i.completed_at AS journal_retention,
       NULL::integer[] AS suspended_waiting_for_completions,
       NULL::integer[] AS suspended_waiting_for_signals,
       NULL::text AS suspended_waiting_future_json,
       t.attempt::bigint AS retry_count,
       t.last_start_at AS last_start_at,
       CASE WHEN t.status = 'backing-off' THEN t.run_at END AS next_retry_at,
       t.deployment_id AS last_attempt_deployment_id,
       NULL::text AS last_attempt_server,
       t.last_failure AS last_failure,
       t.last_failure_code::text AS last_failure_error_code,
       NULL::bigint AS last_failure_related_entry_index,
       NULL::text AS last_failure_related_entry_name,
       NULL::text AS last_failure_related_entry_type,
       NULL::bigint AS last_failure_related_command_index,
       NULL::text AS last_failure_related_command_name,
       NULL::text AS last_failure_related_command_type,
       NULL::text AS last_awaiting_on_future_json,
       i.result AS completion_result,
       CASE WHEN i.result = 'failure' THEN '[' || i.failure_code || '] ' || i.failure_message END AS completion_failure
  FROM "{schema}".task t JOIN "{schema}".invocation i ON i.id = t.invocation_id
  LEFT JOIN "{schema}".invocation c ON c.id = i.caller_id
UNION ALL
SELECT i.id AS id,
       i.service || '/' || COALESCE(i.key || '/', '') || i.handler AS target,
       i.service AS target_service_name,
       i.key AS target_service_key,
       i.handler AS target_handler_name,
       i.service_ty AS target_service_ty,
       'pending'::text AS status,
       NULL::text AS vqueue_id,
       i.scope,
       i.limit_key,
       i.idempotency_key AS idempotency_key,
       CASE WHEN i.restarted_from IS NOT NULL THEN 'restart_as_new' ELSE i.invoked_by END AS invoked_by,
       c.service AS invoked_by_service_name,
       i.caller_id AS invoked_by_id,
       NULL::text AS invoked_by_subscription_id,
       c.service || '/' || COALESCE(c.key || '/', '') || c.handler AS invoked_by_target,
       i.restarted_from AS restarted_from,
       i.deployment_id AS pinned_deployment_id,
       NULL::integer AS pinned_service_protocol_version,
       NULL::text AS trace_id,
       (SELECT count(*) FROM "{schema}".journal j WHERE j.invocation_id = i.id)::integer + 1 + (i.status = 'completed')::integer AS journal_size,
       (SELECT count(*) FROM "{schema}".journal j WHERE j.invocation_id = i.id AND j.command_index IS NOT NULL)::integer + 1 + (i.status = 'completed')::integer AS journal_commands_size,
       i.created_at AS created_at,
       NULL::text AS created_using_restate_version,
       i.modified_at AS modified_at,
       NULL::timestamptz AS inboxed_at,
       CASE WHEN i.scheduled_start_at IS NOT NULL THEN i.created_at END AS scheduled_at,
       i.scheduled_start_at AS scheduled_start_at,
       NULL::timestamptz AS running_at,
       i.completed_at AS completed_at,
       i.retain_until - i.completed_at AS completion_retention,
       i.retain_until - i.completed_at AS journal_retention,
       NULL::integer[] AS suspended_waiting_for_completions,
       NULL::integer[] AS suspended_waiting_for_signals,
       NULL::text AS suspended_waiting_future_json,
       NULL::bigint AS retry_count,
       NULL::timestamptz AS last_start_at,
       NULL::timestamptz AS next_retry_at,
       NULL::text AS last_attempt_deployment_id,
       NULL::text AS last_attempt_server,
       NULL::text AS last_failure,
       NULL::text AS last_failure_error_code,
       NULL::bigint AS last_failure_related_entry_index,
       NULL::text AS last_failure_related_entry_name,
       NULL::text AS last_failure_related_entry_type,
       NULL::bigint AS last_failure_related_command_index,
       NULL::text AS last_failure_related_command_name,
       NULL::text AS last_failure_related_command_type,
       NULL::text AS last_awaiting_on_future_json,
       i.result AS completion_result,
       CASE WHEN i.result = 'failure' THEN '[' || i.failure_code || '] ' || i.failure_message END AS completion_failure
  FROM "{schema}".invocation i
  LEFT JOIN "{schema}".invocation c ON c.id = i.caller_id
 WHERE i.status = 'inboxed'
UNION ALL
SELECT i.id AS id,
       i.service || '/' || COALESCE(i.key || '/', '') || i.handler AS target,
       i.service AS target_service_name,
       i.key AS target_service_key,
       i.handler AS target_handler_name,
       i.service_ty AS target_service_ty,
       'completed'::text AS status,
       NULL::text AS vqueue_id,
       i.scope,
       i.limit_key,
       i.idempotency_key AS idempotency_key,
       CASE WHEN i.restarted_from IS NOT NULL THEN 'restart_as_new' ELSE i.invoked_by END AS invoked_by,
       c.service AS invoked_by_service_name,
       i.caller_id AS invoked_by_id,
       NULL::text AS invoked_by_subscription_id,
       c.service || '/' || COALESCE(c.key || '/', '') || c.handler AS invoked_by_target,
       i.restarted_from AS restarted_from,
       i.deployment_id AS pinned_deployment_id,
       NULL::integer AS pinned_service_protocol_version,
       NULL::text AS trace_id,
       (SELECT count(*) FROM "{schema}".journal j WHERE j.invocation_id = i.id)::integer + 1 + (i.status = 'completed')::integer AS journal_size,
       (SELECT count(*) FROM "{schema}".journal j WHERE j.invocation_id = i.id AND j.command_index IS NOT NULL)::integer + 1 + (i.status = 'completed')::integer AS journal_commands_size,
       i.created_at AS created_at,
       NULL::text AS created_using_restate_version,
       i.modified_at AS modified_at,
       NULL::timestamptz AS inboxed_at,
       CASE WHEN i.scheduled_start_at IS NOT NULL THEN i.created_at END AS scheduled_at,
       i.scheduled_start_at AS scheduled_start_at,
       NULL::timestamptz AS running_at,
       i.completed_at AS completed_at,
       i.retain_until - i.completed_at AS completion_retention,
       i.retain_until - i.completed_at AS journal_retention,
       NULL::integer[] AS suspended_waiting_for_completions,
       NULL::integer[] AS suspended_waiting_for_signals,
       NULL::text AS suspended_waiting_future_json,
       NULL::bigint AS retry_count,
       NULL::timestamptz AS last_start_at,
       NULL::timestamptz AS next_retry_at,
       NULL::text AS last_attempt_deployment_id,
       NULL::text AS last_attempt_server,
       NULL::text AS last_failure,
       NULL::text AS last_failure_error_code,
       NULL::bigint AS last_failure_related_entry_index,
       NULL::text AS last_failure_related_entry_name,
       NULL::text AS last_failure_related_entry_type,
       NULL::bigint AS last_failure_related_command_index,
       NULL::text AS last_failure_related_command_name,
       NULL::text AS last_failure_related_command_type,
       NULL::text AS last_awaiting_on_future_json,
       i.result AS completion_result,
       CASE WHEN i.result = 'failure' THEN '[' || i.failure_code || '] ' || i.failure_message END AS completion_failure
  FROM "{schema}".invocation i
  LEFT JOIN "{schema}".invocation c ON c.id = i.caller_id
 WHERE i.status = 'completed';

-- sys_rules: the flow-control rules, with the columns of Restate's table (pattern, concurrency,
-- description, disabled, version, last_modified) and restate-pg's other limits after them
CREATE OR REPLACE VIEW "{schema}".sys_rules AS
SELECT pattern, concurrency, description, disabled, version, last_modified,
       rate, rate_interval_ms, burst, backlog
  FROM "{schema}".flow_rule;

-- sys_vqueues: one row per scope and limit key with unfinished invocations (Restate's virtual
-- queues): how many are running (leased), queued (ready, waiting for a slot or a token),
-- waiting (suspended, backing off, paused, scheduled), the oldest queued one's age in ms
CREATE OR REPLACE VIEW "{schema}".sys_vqueues AS
SELECT t.scope, t.limit_key,
       count(*) FILTER (WHERE t.lease_owner IS NOT NULL)::bigint AS num_running,
       count(*) FILTER (WHERE t.lease_owner IS NULL AND t.run_at <= now() AND t.status = 'ready')::bigint AS num_queued,
       count(*) FILTER (WHERE t.lease_owner IS NULL AND NOT (t.run_at <= now() AND t.status = 'ready'))::bigint AS num_waiting,
       (EXTRACT(EPOCH FROM now() - min(t.run_at) FILTER (WHERE t.lease_owner IS NULL AND t.run_at <= now() AND t.status = 'ready')) * 1000)::bigint
           AS oldest_queued_ms,
       max(t.priority) AS max_priority
  FROM "{schema}".task t
 WHERE t.scope IS NOT NULL
 GROUP BY t.scope, t.limit_key;

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
