-- Revision 0020 (0020_attempts_in_place), downgrade. Frozen once released, never edited (migrations/README.md).
-- Back to 0019: the trigger keeps the attempts, flush and finish_invocation as they were.
-- keep_attempts: when an invocation completes, copy its attempt count from its live-work row
-- (deleted in the same transaction) into the invocation, so that operators still see how many
-- attempts it took. A trigger (invocation_keep_attempts), so that every way an invocation
-- completes (flush, kill, cancel, finish) keeps it without each function saying so.
CREATE OR REPLACE FUNCTION "{schema}".keep_attempts()
RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.attempts := COALESCE((SELECT attempt FROM "{schema}".task WHERE invocation_id = NEW.id), NEW.attempts, 0);
    RETURN NEW;
END
$$;

CREATE TRIGGER invocation_keep_attempts BEFORE UPDATE OF status ON "{schema}".invocation
    FOR EACH ROW WHEN (NEW.status = 'completed' AND OLD.status <> 'completed')
    EXECUTE FUNCTION "{schema}".keep_attempts();
-- finish_invocation: end an invocation that never ran (inboxed or scheduled) with a failure, and
-- tell whoever waits for it: its caller, attached handlers; returns {"waiter", "woken"}.
CREATE OR REPLACE FUNCTION "{schema}".finish_invocation(p_id text, p_code integer, p_message text)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    v_row record;
    v_waiter record;
    v_woken jsonb := '[]'::jsonb;
BEGIN
    UPDATE "{schema}".invocation
       SET status = 'completed', completed_at = now(), modified_at = now(), result = 'failure',
           failure_code = p_code, failure_message = p_message,
           retain_until = now() + interval '1 day'
     WHERE id = p_id
    RETURNING waiter, caller_id, caller_command INTO v_row;
    DELETE FROM "{schema}".task WHERE invocation_id = p_id;
    DELETE FROM "{schema}".inbox WHERE invocation_id = p_id;
    IF v_row.caller_id IS NOT NULL THEN
        v_woken := v_woken || jsonb_build_array(jsonb_build_array(v_row.caller_id, "{schema}".deliver_notification(
            v_row.caller_id, v_row.caller_command, NULL, p_code, p_message, NULL)));
    END IF;
    FOR v_waiter IN DELETE FROM "{schema}".invocation_waiter WHERE invocation_id = p_id RETURNING waiter_id, command_index LOOP
        v_woken := v_woken || jsonb_build_array(jsonb_build_array(v_waiter.waiter_id, "{schema}".deliver_notification(
            v_waiter.waiter_id, v_waiter.command_index, NULL, p_code, p_message, NULL)));
    END LOOP;
    RETURN jsonb_build_object('waiter', v_row.waiter, 'woken', v_woken);
END
$$;
-- flush: apply one attempt's buffered writes and its outcome, fenced by its lease. Locks are
-- taken in the documented order: own task row (fence), the caller's task row, object keys in
-- the order given (sorted by the client), so that flushes never wait on each other in a cycle.
CREATE OR REPLACE FUNCTION "{schema}".flush(p jsonb)
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

    IF p ? 'journal' THEN
        PERFORM "{schema}".append_journal(jsonb_build_array(p));
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
        FOR v_item IN  -- the handlers attached to this invocation, told and forgotten in one statement
            DELETE FROM "{schema}".invocation_waiter WHERE invocation_id = v_id
            RETURNING jsonb_build_array(waiter_id, command_index)
        LOOP
            v_woken := v_woken || jsonb_build_array(jsonb_build_array(v_item->>0, "{schema}".deliver_notification(
                v_item->>0, (v_item->>1)::integer, decode(v_outcome->>'output', 'base64'),
                (v_outcome->>'failure_code')::integer, v_outcome->>'failure_message', v_outcome->'failure_metadata')));
        END LOOP;
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
