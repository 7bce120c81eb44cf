-- Revision 0012 (0012_flow_control), downgrade. Frozen once released, never edited (migrations/README.md).
DROP VIEW IF EXISTS "{schema}".sys_user_limits;
DROP VIEW IF EXISTS "{schema}".sys_vqueues;
DROP VIEW IF EXISTS "{schema}".sys_rules;

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
       NULL::text AS scope,
       NULL::text AS limit_key,
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
       NULL::text AS scope,
       NULL::text AS limit_key,
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
       NULL::text AS scope,
       NULL::text AS limit_key,
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

DROP TRIGGER IF EXISTS task_flow_deleted ON "{schema}".task;
DROP TRIGGER IF EXISTS task_flow_released ON "{schema}".task;
DROP FUNCTION IF EXISTS "{schema}".flow_released();
DROP FUNCTION IF EXISTS "{schema}".claim_flow(text, text[], integer, text[], text[], text);

-- Revision 0006 (0006_deployment_pinning), upgrade. Frozen once released, never edited (migrations/README.md).
-- submit_invocation: create an invocation and its task, or queue it behind its object key;
-- returns its status (invoked | inboxed | scheduled), or NULL when the id already existed.
-- For an exclusive handler the caller holds the key's lock_object_key.
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
BEGIN
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
        idempotency_key, invoked_by, caller_id, caller_command, waiter, scheduled_start_at, deployment_id)
    VALUES (v_id, v_service, p->>'handler', v_key, p->>'service_ty', p->>'handler_ty', v_status,
            decode(p->>'input', 'base64'), COALESCE(p->'headers', '{}'::jsonb),
            p->>'idempotency_key', p->>'invoked_by', p->>'caller_id', (p->>'caller_command')::integer,
            p->>'waiter', v_start_at, v_deployment)
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
        INSERT INTO "{schema}".task (invocation_id, service, status, run_at)
        VALUES (v_id, v_service, CASE WHEN v_status = 'scheduled' THEN 'scheduled' ELSE 'ready' END,
                COALESCE(v_start_at, now()));
    END IF;
    RETURN v_status;
END
$$;

-- release_object_key: hand an object key to the head of its inbox, or free it; returns the
-- invocation that got the key, leased to p_owner when given (to run it at once, pinned to that
-- worker's deployment), else ready. One already pinned to another deployment (restarted with a
-- journal prefix) is made ready for its own deployment instead, and NULL returned to p_owner.
-- Only the key's holder may let it go: anyone else is refused with a warning, and nothing changes.
-- The caller holds the key's lock_object_key.
CREATE OR REPLACE FUNCTION "{schema}".release_object_key(p_service text, p_key text, p_holder text, p_owner text)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    v_next text;
    v_deployment text;
    v_pinned text;
    v_owner text := p_owner;
    v_holder text;
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
    RETURNING deployment_id INTO v_pinned;
    IF v_pinned IS DISTINCT FROM v_deployment THEN
        v_owner := NULL;
        v_deployment := v_pinned;
    END IF;
    IF v_owner IS NULL THEN
        INSERT INTO "{schema}".task (invocation_id, service, status, run_at, deployment_id)
        VALUES (v_next, p_service, 'ready', now(), v_deployment);
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

DROP FUNCTION IF EXISTS "{schema}".flow_rule_for(text, text, integer);
DROP TABLE IF EXISTS "{schema}".flow_counter;
DROP TABLE IF EXISTS "{schema}".flow_rule;
DROP INDEX IF EXISTS "{schema}".invocation_debounce;
DROP INDEX IF EXISTS "{schema}".task_scope;
DROP INDEX IF EXISTS "{schema}".task_flow_due;
ALTER TABLE "{schema}".task DROP COLUMN IF EXISTS priority, DROP COLUMN IF EXISTS limit_key, DROP COLUMN IF EXISTS scope;
ALTER TABLE "{schema}".invocation DROP COLUMN IF EXISTS debounce_key, DROP COLUMN IF EXISTS priority, DROP COLUMN IF EXISTS limit_key, DROP COLUMN IF EXISTS scope;
