-- claim_flow: lease up to p_limit due tasks under flow control (scoped, or with a priority) to a
-- worker, highest priority first (a task gains one priority point per 10 s it waits, so that low
-- priorities never starve), each only if every rule of its scope and limit key admits it: fewer
-- leased tasks than the rule's concurrency, a token of its rate (first attempts only). The scope's
-- counter row is the mutex of its claims (locked, or skipped when another claim holds it), and
-- usage is counted from the leases themselves, so that whatever ends a lease (completion,
-- suspension, backoff, pause, kill, reaping) frees the slot in its own transaction. A task marked
-- by a target rule (`flow_target`: its service and handler) must also be admitted by the rules of
-- its service and handler: concurrency, concurrency per tenant key (`flow_key`), a token of the
-- rule's bucket; its service's counter row (`service:<name>`) is the mutex of those claims.
CREATE OR REPLACE FUNCTION {s}.claim_flow(p_owner text, p_services text[], p_limit integer, p_deployments text[],
                                          p_fresh text[], p_deployment text)
RETURNS TABLE (invocation_id text, epoch integer, attempt integer, wakeups bigint, previous_status text,
               pinned_now boolean, lag float8)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    v_task record;
    v_rule {s}.flow_rule;
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
    v_mutex text;
    v_take_target text[];
    v_target_rule {s}.flow_rule;
BEGIN
    FOR v_task IN
        SELECT t.invocation_id AS id, t.status, t.deployment_id, t.run_at, t.scope, COALESCE(t.limit_key, '') AS limit_key,
               t.attempt AS attempts, t.service, t.flow_target, t.flow_key
          FROM {s}.task t
         WHERE t.lease_owner IS NULL AND t.run_at <= now() AND t.status <> 'scheduled'
           AND (t.scope IS NOT NULL OR t.priority <> 0 OR t.flow_target IS NOT NULL)
           AND t.service = ANY(p_services)
           AND ((t.deployment_id IS NULL AND t.service = ANY(p_fresh)) OR t.deployment_id = ANY(p_deployments))
           AND NOT EXISTS (
               SELECT 1 FROM {s}.invocation i
                WHERE i.id = t.invocation_id AND i.handler_ty = 'exclusive'
                  AND NOT EXISTS (SELECT 1 FROM {s}.object_lock l
                                   WHERE l.service = i.service AND l.key = i.key AND l.invocation_id = i.id))
         ORDER BY t.priority + EXTRACT(EPOCH FROM now() - t.run_at) / 10 DESC, t.run_at
           FOR UPDATE OF t SKIP LOCKED
    LOOP
        EXIT WHEN v_claimed >= p_limit OR v_seen >= 256;
        v_seen := v_seen + 1;
        v_take := '{}';
        v_take_target := '{}';
        IF v_task.scope IS NOT NULL THEN
            CONTINUE WHEN v_task.scope = ANY(v_skip);
            INSERT INTO {s}.flow_counter (scope, limit_key) VALUES (v_task.scope, '') ON CONFLICT DO NOTHING;
            PERFORM 1 FROM {s}.flow_counter c WHERE c.scope = v_task.scope AND c.limit_key = '' FOR UPDATE SKIP LOCKED;
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
                v_rule := {s}.flow_rule_for(v_task.scope, v_task.limit_key, v_level);
                CONTINUE WHEN v_rule.pattern IS NULL;
                IF v_rule.concurrency IS NOT NULL THEN
                    SELECT count(*) INTO v_used FROM {s}.task u
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
                    INSERT INTO {s}.flow_counter (scope, limit_key) VALUES (v_task.scope, v_key) ON CONFLICT DO NOTHING;
                    SELECT least(v_rule.burst::float8, COALESCE(c.tokens, v_rule.burst::float8)
                                 + greatest(0, EXTRACT(EPOCH FROM clock_timestamp() - COALESCE(c.refilled_at, clock_timestamp())))
                                   * 1000 * v_rule.rate / v_rule.rate_interval_ms)
                      INTO v_tokens FROM {s}.flow_counter c WHERE c.scope = v_task.scope AND c.limit_key = v_key;
                    IF v_tokens < 1 THEN
                        v_skip := v_skip || (v_task.scope || '/' || v_key || '@' || v_level);
                        v_admit := false;
                        EXIT;
                    END IF;
                    v_take := v_take || v_key;
                END IF;
            END LOOP;
            CONTINUE WHEN NOT v_admit;
        END IF;
        IF v_task.flow_target IS NOT NULL THEN  -- the rules of its service and its handler
            v_mutex := 'service:' || v_task.service;
            CONTINUE WHEN v_mutex = ANY(v_skip) OR ('service:' || v_task.flow_target) = ANY(v_skip);
            INSERT INTO {s}.flow_counter (scope, limit_key) VALUES (v_mutex, '') ON CONFLICT DO NOTHING;
            PERFORM 1 FROM {s}.flow_counter c WHERE c.scope = v_mutex AND c.limit_key = '' FOR UPDATE SKIP LOCKED;
            IF NOT FOUND THEN
                v_skip := v_skip || v_mutex;
                CONTINUE;
            END IF;
            v_admit := true;
            FOR v_target_rule IN
                SELECT r.* FROM {s}.flow_rule r
                 WHERE r.pattern IN (v_mutex, 'service:' || v_task.flow_target) AND NOT r.disabled
            LOOP
                IF v_target_rule.concurrency IS NOT NULL THEN
                    SELECT count(*) INTO v_used FROM {s}.task u
                     WHERE u.lease_owner IS NOT NULL
                       AND (CASE WHEN v_target_rule.level = 3 THEN u.service = v_task.service
                                 ELSE u.flow_target = v_task.flow_target END);
                    IF v_used >= v_target_rule.concurrency THEN
                        v_skip := v_skip || v_target_rule.pattern;
                        v_admit := false;
                        EXIT;
                    END IF;
                END IF;
                IF v_target_rule.concurrency_per_key IS NOT NULL AND v_task.flow_key IS NOT NULL THEN
                    SELECT count(*) INTO v_used FROM {s}.task u
                     WHERE u.lease_owner IS NOT NULL AND u.flow_key = v_task.flow_key
                       AND (CASE WHEN v_target_rule.level = 3 THEN u.service = v_task.service
                                 ELSE u.flow_target = v_task.flow_target END);
                    IF v_used >= v_target_rule.concurrency_per_key THEN
                        v_admit := false;
                        EXIT;
                    END IF;
                END IF;
                IF v_target_rule.rate IS NOT NULL AND v_task.attempts = 0 THEN
                    INSERT INTO {s}.flow_counter (scope, limit_key) VALUES (v_target_rule.pattern, '') ON CONFLICT DO NOTHING;
                    SELECT least(v_target_rule.burst::float8, COALESCE(c.tokens, v_target_rule.burst::float8)
                                 + greatest(0, EXTRACT(EPOCH FROM clock_timestamp() - COALESCE(c.refilled_at, clock_timestamp())))
                                   * 1000 * v_target_rule.rate / v_target_rule.rate_interval_ms)
                      INTO v_tokens FROM {s}.flow_counter c WHERE c.scope = v_target_rule.pattern AND c.limit_key = '';
                    IF v_tokens < 1 THEN
                        v_skip := v_skip || v_target_rule.pattern;
                        v_admit := false;
                        EXIT;
                    END IF;
                    v_take_target := v_take_target || v_target_rule.pattern;
                END IF;
            END LOOP;
            CONTINUE WHEN NOT v_admit;
            IF array_length(v_take_target, 1) > 0 THEN  -- a token of each target rule's bucket
                UPDATE {s}.flow_counter c
                   SET tokens = least(r.burst::float8, COALESCE(c.tokens, r.burst::float8)
                                 + greatest(0, EXTRACT(EPOCH FROM clock_timestamp() - COALESCE(c.refilled_at, clock_timestamp())))
                                   * 1000 * r.rate / r.rate_interval_ms) - 1,
                       refilled_at = clock_timestamp()
                  FROM {s}.flow_rule r
                 WHERE r.pattern = ANY(v_take_target) AND c.scope = r.pattern AND c.limit_key = '';
            END IF;
        END IF;
        IF array_length(v_take, 1) > 0 THEN  -- a token of each scope rate, once every rule admitted it
            UPDATE {s}.flow_counter c
               SET tokens = least(r.burst::float8, COALESCE(c.tokens, r.burst::float8)
                             + greatest(0, EXTRACT(EPOCH FROM clock_timestamp() - COALESCE(c.refilled_at, clock_timestamp())))
                               * 1000 * r.rate / r.rate_interval_ms) - 1,
                   refilled_at = clock_timestamp()
              FROM unnest(v_take) k(key)
              CROSS JOIN LATERAL {s}.flow_rule_for(v_task.scope, v_task.limit_key,
                                                   CASE WHEN k.key = '' THEN 0 ELSE array_length(string_to_array(k.key, '/'), 1) END) r
             WHERE c.scope = v_task.scope AND c.limit_key = k.key;
        END IF;
        UPDATE {s}.task t
           SET lease_owner = p_owner, epoch = t.epoch + 1, attempt = t.attempt + 1,
               status = 'running', last_start_at = now(), deployment_id = p_deployment
         WHERE t.invocation_id = v_task.id
        RETURNING t.invocation_id, t.epoch, t.attempt, t.wakeups
          INTO invocation_id, epoch, attempt, wakeups;
        previous_status := v_task.status;
        pinned_now := v_task.deployment_id IS DISTINCT FROM p_deployment;
        lag := EXTRACT(EPOCH FROM now() - v_task.run_at)::float8;
        IF pinned_now THEN
            UPDATE {s}.invocation SET deployment_id = p_deployment WHERE id = v_task.id;
        END IF;
        v_claimed := v_claimed + 1;
        RETURN NEXT;
    END LOOP;
END
$$;
