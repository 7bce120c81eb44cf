-- flush: apply one attempt's buffered writes and its outcome, fenced by its lease. Locks are
-- taken in the documented order: own task row (fence), the caller's task row, object keys in
-- the order given (sorted by the client), so that flushes never wait on each other in a cycle.
CREATE OR REPLACE FUNCTION {s}.flush(p jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    v_id text := p->>'id';
    v_outcome jsonb;
    v_kind text;
    v_result jsonb;
    v_submitted jsonb;
    v_text text;
    v_item jsonb;
    v_resolved jsonb;
    v_woken jsonb;
    v_answers jsonb;
BEGIN
    IF p->'create' IS NOT NULL THEN  -- created by its first flush, leased to this attempt (running already)
        PERFORM {s}.submit_invocation(p->'create' || '{"running": true}'::jsonb);
    END IF;
    IF p ? 'promise_key' THEN  -- sections absent from the request cost nothing: this is the hot path
        FOR v_text IN SELECT DISTINCT value->>'name' AS name
                        FROM jsonb_array_elements(COALESCE(p->'promise_gets', '[]'::jsonb)
                                                  || COALESCE(p->'promise_completions', '[]'::jsonb))
                       ORDER BY name LOOP
            PERFORM {s}.lock_promise(p->'promise_key'->>0, p->'promise_key'->>1, v_text);
        END LOOP;
    END IF;
    PERFORM {s}.fence(v_id, p->>'owner', (p->>'epoch')::integer);

    IF p ? 'journal' THEN
        PERFORM {s}.append_journal(jsonb_build_array(p));
    END IF;
    IF NOT p ?| ARRAY['outcome', 'locks', 'state', 'submissions', 'resolutions', 'signals', 'promise_completions',
                      'promise_gets', 'cancels', 'attaches', 'consumed'] THEN
        RETURN '{"submitted": []}'::jsonb;  -- journal_only: a step's result, a sleep (most flushes)
    END IF;
    v_outcome := p->'outcome';
    v_kind := v_outcome->>'kind';
    v_result := '{}'::jsonb;
    v_submitted := '[]'::jsonb;
    v_woken := '[]'::jsonb;
    v_answers := '{}'::jsonb;

    IF v_kind = 'complete' AND v_outcome->>'caller_id' IS NOT NULL THEN
        v_text := {s}.deliver_notification(  -- the result, to the caller's mailbox
            v_outcome->>'caller_id', (v_outcome->>'caller_command')::integer,
            decode(v_outcome->>'output', 'base64'), (v_outcome->>'failure_code')::integer,
            v_outcome->>'failure_message', v_outcome->'failure_metadata');
        v_result := v_result || jsonb_build_object('caller_owner', v_text);
    END IF;

    IF p ? 'locks' THEN
        FOR v_item IN SELECT value FROM jsonb_array_elements(p->'locks') LOOP
            PERFORM {s}.lock_object_key(v_item->>0, v_item->>1);
        END LOOP;
    END IF;

    IF p ? 'state' THEN  -- set_state / clear_state / clear_all_state, in the handler's order
        FOR v_item IN SELECT value FROM jsonb_array_elements(p->'state') LOOP
            IF v_item->>'op' = 'set' THEN
                INSERT INTO {s}.state_entry (service, key, name, value)
                VALUES (v_item->>'service', v_item->>'key', v_item->>'name', decode(v_item->>'value', 'base64'))
                ON CONFLICT (service, key, name) DO UPDATE SET value = EXCLUDED.value;
            ELSIF v_item->>'op' = 'clear' THEN
                DELETE FROM {s}.state_entry
                 WHERE service = v_item->>'service' AND key = v_item->>'key' AND name = v_item->>'name';
            ELSE
                DELETE FROM {s}.state_entry WHERE service = v_item->>'service' AND key = v_item->>'key';
            END IF;
        END LOOP;
    END IF;

    IF p ? 'submissions' THEN
        FOR v_item IN SELECT value FROM jsonb_array_elements(p->'submissions') LOOP
            v_text := {s}.submit_invocation(v_item);
            IF v_text IS NULL AND v_item->>'caller_id' IS NOT NULL THEN
                IF v_item->>'handler_ty' = 'workflow' THEN  -- a workflow runs once per id
                    v_answers := v_answers || jsonb_build_object(v_item->>'caller_command', jsonb_build_object(
                        'completed', true, 'failure_code', 409,
                        'failure_message', 'the workflow method was already invoked'));
                ELSE  -- same idempotency key: attach to the first, get its result now or at its end
                    v_answers := v_answers || jsonb_build_object(v_item->>'caller_command', {s}.attach_invocation(
                        v_item->>'id', v_id, (v_item->>'caller_command')::integer));
                END IF;
            END IF;
            v_submitted := v_submitted || jsonb_build_array({s}.started(v_item, v_text));
        END LOOP;
    END IF;
    v_result := v_result || jsonb_build_object('submitted', v_submitted);

    IF p ? 'resolutions' THEN
        FOR v_item IN SELECT value FROM jsonb_array_elements(p->'resolutions') LOOP
            v_resolved := {s}.resolve_awakeable(v_item);
            IF v_resolved->>'status' = 'resolved' THEN
                v_woken := v_woken || jsonb_build_array(jsonb_build_array(v_item->>'invocation_id', v_resolved->'owner'));
            END IF;
        END LOOP;
    END IF;
    IF p ? 'signals' THEN  -- signals for other invocations (SDK endpoints' awakeables, named signals)
        FOR v_item IN SELECT value FROM jsonb_array_elements(p->'signals') LOOP
            v_resolved := {s}.resolve_signal(v_item);
            IF v_resolved->>'status' = 'resolved' THEN
                v_woken := v_woken || jsonb_build_array(jsonb_build_array(v_item->>'invocation_id', v_resolved->'owner'));
            END IF;
        END LOOP;
    END IF;
    IF p ? 'promise_completions' THEN
        FOR v_item IN SELECT value FROM jsonb_array_elements(p->'promise_completions') LOOP
            v_resolved := {s}.complete_promise(p->'promise_key'->>0, p->'promise_key'->>1,
                                               v_item || jsonb_build_object('invocation_id', v_id));
            v_woken := v_woken || (v_resolved->'woken');
            v_answers := v_answers || jsonb_build_object(v_item->>'command', v_resolved->>'status');
        END LOOP;
    END IF;
    IF p ? 'promise_gets' THEN
        FOR v_item IN SELECT value FROM jsonb_array_elements(p->'promise_gets') LOOP
            v_answers := v_answers || jsonb_build_object(v_item->>'command', {s}.get_promise(
                p->'promise_key'->>0, p->'promise_key'->>1, v_item->>'name', v_id, (v_item->>'command')::integer,
                COALESCE((v_item->>'peek')::boolean, false)));
        END LOOP;
    END IF;
    IF p ? 'cancels' THEN
        FOR v_text IN SELECT value FROM jsonb_array_elements_text(p->'cancels') LOOP
            v_resolved := {s}.cancel_invocation(v_text);
            v_woken := v_woken || COALESCE(v_resolved->'woken', '[]'::jsonb);
        END LOOP;
    END IF;
    IF p ? 'attaches' THEN
        FOR v_item IN SELECT value FROM jsonb_array_elements(p->'attaches') LOOP
            v_answers := v_answers || jsonb_build_object(v_item->>'command', {s}.attach_invocation(
                v_item->>'target', v_id, (v_item->>'command')::integer));
        END LOOP;
    END IF;
    v_result := v_result || jsonb_build_object('woken', v_woken, 'answers', v_answers);

    IF p->'consumed' IS NOT NULL THEN  -- delete_notifications: mailbox rows now in the journal
        DELETE FROM {s}.notification
         WHERE seq IN (SELECT value::bigint FROM jsonb_array_elements_text(p->'consumed'));
    END IF;

    IF v_kind = 'suspend' THEN
        -- suspend_task: give up the lease until a timer is due or a notification arrives
        UPDATE {s}.task
           SET lease_owner = NULL, status = 'suspended',
               run_at = COALESCE((v_outcome->>'wake_at')::timestamptz, 'infinity')
         WHERE invocation_id = v_id AND wakeups = (v_outcome->>'wakeups')::bigint;
        v_result := v_result || jsonb_build_object('suspended', FOUND);
    ELSIF v_kind = 'retry' THEN
        -- retry_task: give up the lease after a retryable failure, to back off or to pause
        UPDATE {s}.task
           SET lease_owner = NULL, status = v_outcome->>'status',
               run_at = CASE WHEN v_outcome->>'status' = 'paused' THEN 'infinity'
                             ELSE now() + (v_outcome->>'delay_ms')::bigint * interval '1 millisecond' END,
               last_failure = v_outcome->>'failure', last_failure_code = (v_outcome->>'failure_code')::integer
         WHERE invocation_id = v_id;
    ELSIF v_kind = 'complete' THEN
        -- complete_invocation: store the result and the attempts it took (counted by the task row,
        -- deleted below); the process waiting for it is told by the client
        UPDATE {s}.invocation
           SET status = 'completed', completed_at = now(), modified_at = now(),
               result = CASE WHEN v_outcome->>'failure_code' IS NULL THEN 'success' ELSE 'failure' END,
               output = decode(v_outcome->>'output', 'base64'),
               failure_code = (v_outcome->>'failure_code')::integer,
               failure_message = v_outcome->>'failure_message',
               failure_metadata = v_outcome->'failure_metadata',
               retain_until = now() + (v_outcome->>'retention_ms')::bigint * interval '1 millisecond',
               attempts = COALESCE((SELECT t.attempt FROM {s}.task t WHERE t.invocation_id = v_id), attempts, 0)
         WHERE id = v_id
        RETURNING waiter INTO v_text;
        v_result := v_result || jsonb_build_object('waiter', v_text);
        FOR v_item IN  -- the handlers attached to this invocation, told and forgotten in one statement
            DELETE FROM {s}.invocation_waiter WHERE invocation_id = v_id
            RETURNING jsonb_build_array(waiter_id, command_index)
        LOOP
            v_woken := v_woken || jsonb_build_array(jsonb_build_array(v_item->>0, {s}.deliver_notification(
                v_item->>0, (v_item->>1)::integer, decode(v_outcome->>'output', 'base64'),
                (v_outcome->>'failure_code')::integer, v_outcome->>'failure_message', v_outcome->'failure_metadata')));
        END LOOP;
        v_result := v_result || jsonb_build_object('woken', v_woken);
        DELETE FROM {s}.task WHERE invocation_id = v_id;  -- delete_task: leaves the live-work table
        IF jsonb_typeof(v_outcome->'release_key') = 'array' THEN
            v_text := {s}.release_object_key(
                v_outcome->'release_key'->>0, v_outcome->'release_key'->>1, v_id, v_outcome->>'take_next_owner');
            IF v_text IS NOT NULL THEN  -- the next holder, to start at once when leased to this process
                v_result := v_result || jsonb_build_object('next_holder', (
                    SELECT jsonb_build_object(
                        'id', id, 'service', service, 'handler', handler, 'key', key,
                        'input', encode(input, 'base64'), 'headers', headers,
                        'idempotency_key', idempotency_key, 'caller_id', caller_id,
                        'caller_command', caller_command)
                      FROM {s}.invocation WHERE id = v_text));
            END IF;
        END IF;
    END IF;
    RETURN v_result;
END
$$;
