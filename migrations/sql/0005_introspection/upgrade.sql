-- Revision 0005 (0005_introspection), upgrade. Frozen once released, never edited (migrations/README.md).
ALTER TABLE "{schema}".state RENAME TO state_entry;

ALTER INDEX "{schema}".state_pkey RENAME TO state_entry_pkey;

-- eager_state: every state value of an object key, base64, for an attempt about to start here,
-- so that it needs no read of its own; NULL when they are too many bytes to be worth sending.
CREATE OR REPLACE FUNCTION "{schema}".eager_state(p_service text, p_key text)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    v_state jsonb;
BEGIN
    SELECT CASE WHEN count(*) = 0 THEN '{}'::jsonb
                WHEN sum(octet_length(value)) <= 65536
                THEN jsonb_object_agg(name, encode(value, 'base64')) END
      INTO v_state
      FROM "{schema}".state_entry WHERE service = p_service AND key = p_key;
    RETURN v_state;
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
                                 sleep_wakeup_at)
        SELECT v_id, (j->>'index')::integer, (j->>'command_index')::integer, (j->>'completes')::integer,
               j->>'entry_type', j->>'name', j->'params', COALESCE((j->>'completed')::boolean, false),
               decode(j->>'value', 'base64'), (j->>'failure_code')::integer, j->>'failure_message',
               j->'failure_metadata', (j->>'sleep_wakeup_at')::timestamptz
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

-- bytes_as_utf8: a stored value as text when it is valid UTF-8 (JSON, strings), else NULL
-- (parallel unsafe, the default: its EXCEPTION block starts a subtransaction)
CREATE OR REPLACE FUNCTION "{schema}".bytes_as_utf8(p_value bytea)
RETURNS text LANGUAGE plpgsql IMMUTABLE STRICT AS $$
BEGIN
    RETURN convert_from(p_value, 'UTF8');
EXCEPTION WHEN character_not_in_repertoire OR untranslatable_character THEN
    RETURN NULL;
END
$$;

-- state: every state value of virtual objects and workflows, as bytes and as text
CREATE OR REPLACE VIEW "{schema}".state AS
SELECT NULL::text AS scope, service AS service_name, key AS service_key, name AS key,
       octet_length(name)::bigint AS key_length, "{schema}".bytes_as_utf8(value) AS value_utf8, value,
       octet_length(value)::bigint AS value_length
  FROM "{schema}".state_entry;

-- sys_invocation: every known invocation with its target, status, retries and result
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

-- sys_journal: the journal of each invocation, with its input (index 0) and, once completed, its
-- output (after the last entry), which restate-pg keeps on the invocation row
CREATE OR REPLACE VIEW "{schema}".sys_journal AS
SELECT j.invocation_id AS id, j.index,
       CASE WHEN j.command_index IS NOT NULL
            THEN 'Command: ' || CASE j.entry_type WHEN 'GetState' THEN 'GetEagerState'
                                                 WHEN 'GetStateKeys' THEN 'GetEagerStateKeys'
                                                 WHEN 'CancelInvocation' THEN 'SendSignal'
                                                 ELSE j.entry_type END
            ELSE 'Notification: ' || CASE WHEN j.entry_type IN ('Awakeable', 'Cancel') THEN 'Signal'
                                          ELSE j.entry_type END
       END AS entry_type,
       j.name,
       j.command_index IS NULL OR j.completed OR EXISTS (
           SELECT 1 FROM "{schema}".journal n WHERE n.invocation_id = j.invocation_id AND n.completes = j.command_index
       ) AS completed,
       CASE WHEN j.command_index IS NOT NULL AND j.entry_type IN ('Call', 'OneWayCall')
            THEN j.params->>'invocation_id' END AS invoked_id,
       CASE WHEN j.command_index IS NOT NULL AND j.entry_type IN ('Call', 'OneWayCall')
            THEN (j.params->>'service') || '/' || COALESCE((j.params->>'key') || '/', '') || (j.params->>'handler')
       END AS invoked_target,
       j.sleep_wakeup_at,
       CASE WHEN j.command_index IS NOT NULL AND j.entry_type IN ('GetPromise', 'PeekPromise', 'CompletePromise')
            THEN j.params->>'name' END AS promise_name,
       j.value AS raw, octet_length(j.value)::bigint AS raw_length, 2 AS version,
       (jsonb_strip_nulls(jsonb_build_object(
           'type', j.entry_type, 'command_index', j.command_index, 'completes', j.completes,
           'name', j.name, 'params', j.params,
           'failure', CASE WHEN j.failure_code IS NOT NULL THEN jsonb_build_object(
               'code', j.failure_code, 'message', j.failure_message, 'metadata', j.failure_metadata) END)) || jsonb_strip_nulls(jsonb_build_object(
           'value', "{schema}".bytes_as_utf8(j.value),
           'value_base64', CASE WHEN "{schema}".bytes_as_utf8(j.value) IS NULL THEN encode(j.value, 'base64') END)))::text AS entry_json,
       jsonb_strip_nulls(jsonb_build_object(
           'type', j.entry_type, 'command_index', j.command_index, 'completes', j.completes,
           'name', j.name, 'params', j.params,
           'failure', CASE WHEN j.failure_code IS NOT NULL THEN jsonb_build_object(
               'code', j.failure_code, 'message', j.failure_message, 'metadata', j.failure_metadata) END))::text AS entry_lite_json,
       j.appended_at
  FROM "{schema}".journal j
UNION ALL
SELECT i.id, 0, 'Command: Input', NULL, true, NULL, NULL, NULL, NULL, i.input, octet_length(i.input)::bigint, 2,
       (jsonb_build_object('type', 'Input', 'headers', i.headers) || jsonb_strip_nulls(jsonb_build_object(
           'value', "{schema}".bytes_as_utf8(i.input),
           'value_base64', CASE WHEN "{schema}".bytes_as_utf8(i.input) IS NULL THEN encode(i.input, 'base64') END)))::text,
       jsonb_build_object('type', 'Input', 'headers', i.headers)::text,
       i.created_at
  FROM "{schema}".invocation i
UNION ALL
SELECT i.id, (SELECT COALESCE(max(j.index), 0) + 1 FROM "{schema}".journal j WHERE j.invocation_id = i.id),
       'Command: Output', NULL, true, NULL, NULL, NULL, NULL, i.output, octet_length(i.output)::bigint, 2,
       (jsonb_strip_nulls(jsonb_build_object('type', 'Output', 'failure', CASE WHEN i.failure_code IS NOT NULL THEN jsonb_build_object('code', i.failure_code, 'message', i.failure_message, 'metadata', i.failure_metadata) END)) || jsonb_strip_nulls(jsonb_build_object(
           'value', "{schema}".bytes_as_utf8(i.output),
           'value_base64', CASE WHEN "{schema}".bytes_as_utf8(i.output) IS NULL THEN encode(i.output, 'base64') END)))::text,
       jsonb_strip_nulls(jsonb_build_object('type', 'Output', 'failure', CASE WHEN i.failure_code IS NOT NULL THEN jsonb_build_object('code', i.failure_code, 'message', i.failure_message, 'metadata', i.failure_metadata) END))::text,
       i.completed_at
  FROM "{schema}".invocation i
 WHERE i.status = 'completed';

-- sys_inbox: exclusive invocations waiting for their object key, in FIFO order per key
CREATE OR REPLACE VIEW "{schema}".sys_inbox AS
SELECT b.service AS service_name, b.key AS service_key, b.invocation_id AS id, b.seq AS sequence_number,
       i.created_at
  FROM "{schema}".inbox b LEFT JOIN "{schema}".invocation i ON i.id = b.invocation_id;

-- sys_keyed_service_status: which invocation holds each locked object key
CREATE OR REPLACE VIEW "{schema}".sys_keyed_service_status AS
SELECT service AS service_name, key AS service_key, invocation_id
  FROM "{schema}".object_lock;

-- sys_idempotency: the invocations submitted with an idempotency key, while they are retained
CREATE OR REPLACE VIEW "{schema}".sys_idempotency AS
SELECT service AS service_name, key AS service_key, handler AS service_handler, idempotency_key,
       id AS invocation_id
  FROM "{schema}".invocation WHERE idempotency_key IS NOT NULL;

-- sys_promise: the durable promises of workflows
CREATE OR REPLACE VIEW "{schema}".sys_promise AS
SELECT NULL::text AS scope, service AS service_name, key AS service_key, name AS key, completed,
       CASE WHEN completed AND failure_code IS NULL THEN value END AS completion_success_value,
       CASE WHEN completed AND failure_code IS NULL THEN "{schema}".bytes_as_utf8(value) END AS completion_success_value_utf8,
       CASE WHEN failure_code IS NOT NULL THEN '[' || failure_code || '] ' || failure_message END AS completion_failure
  FROM "{schema}".promise;

-- sys_service: the registered services
CREATE OR REPLACE VIEW "{schema}".sys_service AS
SELECT name, revision::bigint AS revision, public, ty, deployment_id
  FROM "{schema}".service;

-- sys_deployment: the application versions that ran workers, with the services they registered
CREATE OR REPLACE VIEW "{schema}".sys_deployment AS
SELECT id, NULL::text AS ty, NULL::text AS endpoint, created_at,
       NULL::integer AS min_service_protocol_version, NULL::integer AS max_service_protocol_version,
       ARRAY(SELECT COALESCE(e->>'name', e#>>'{}') FROM jsonb_array_elements(services) e) AS services
  FROM "{schema}".deployment;
