-- Revision 0002 (0002_write_path_functions), upgrade. Frozen once released, never edited (migrations/README.md).
-- lock_object_key: serialise every change of who holds an object key (until the transaction ends)
CREATE OR REPLACE FUNCTION "{schema}".lock_object_key(p_service text, p_key text)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(1919969025, hashtext(p_service || '/' || p_key));
END
$$;

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
BEGIN
    IF v_delay_ms IS NOT NULL THEN
        v_status := 'scheduled';
        v_start_at := now() + v_delay_ms * interval '1 millisecond';
    ELSIF v_exclusive AND EXISTS (
        SELECT 1 FROM "{schema}".object_lock WHERE service = v_service AND key = v_key
    ) THEN
        v_status := 'inboxed';
    END IF;
    INSERT INTO "{schema}".invocation (
        id, service, handler, key, service_ty, handler_ty, status, input, headers,
        idempotency_key, invoked_by, caller_id, caller_command, waiter, scheduled_start_at)
    VALUES (v_id, v_service, p->>'handler', v_key, p->>'service_ty', p->>'handler_ty', v_status,
            decode(p->>'input', 'base64'), COALESCE(p->'headers', '{}'::jsonb),
            p->>'idempotency_key', p->>'invoked_by', p->>'caller_id', (p->>'caller_command')::integer,
            p->>'waiter', v_start_at)
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
        INSERT INTO "{schema}".task (invocation_id, service, status, run_at, lease_owner, epoch, attempt, last_start_at)
        VALUES (v_id, v_service, 'running', now(), v_owner, 1, 1, now());
    ELSE
        INSERT INTO "{schema}".task (invocation_id, service, status, run_at)
        VALUES (v_id, v_service, CASE WHEN v_status = 'scheduled' THEN 'scheduled' ELSE 'ready' END,
                COALESCE(v_start_at, now()));
    END IF;
    RETURN v_status;
END
$$;

-- release_object_key: hand an object key to the head of its inbox, or free it; returns the
-- invocation that got the key, leased to p_owner when given (to run it at once), else ready.
CREATE OR REPLACE FUNCTION "{schema}".release_object_key(p_service text, p_key text, p_holder text, p_owner text)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    v_next text;
BEGIN
    DELETE FROM "{schema}".inbox
     WHERE seq = (SELECT seq FROM "{schema}".inbox WHERE service = p_service AND key = p_key ORDER BY seq LIMIT 1)
    RETURNING invocation_id INTO v_next;
    IF v_next IS NULL THEN
        DELETE FROM "{schema}".object_lock WHERE service = p_service AND key = p_key AND invocation_id = p_holder;
        RETURN NULL;
    END IF;
    UPDATE "{schema}".object_lock SET invocation_id = v_next, acquired_at = now()
     WHERE service = p_service AND key = p_key;
    UPDATE "{schema}".invocation SET status = 'invoked', modified_at = now() WHERE id = v_next;
    IF p_owner IS NULL THEN
        INSERT INTO "{schema}".task (invocation_id, service, status, run_at) VALUES (v_next, p_service, 'ready', now());
    ELSE
        INSERT INTO "{schema}".task (invocation_id, service, status, run_at, lease_owner, epoch, attempt, last_start_at)
        VALUES (v_next, p_service, 'running', now(), p_owner, 1, 1, now());
    END IF;
    RETURN v_next;
END
$$;

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
      FROM "{schema}".state WHERE service = p_service AND key = p_key;
    RETURN v_state;
END
$$;

-- started: what the submitter of `p` needs to know: its status, and the eager state of its object
-- key when it is leased to the submitter at once.
CREATE OR REPLACE FUNCTION "{schema}".started(p jsonb, p_status text)
RETURNS jsonb LANGUAGE plpgsql AS $$
BEGIN
    IF p_status = 'invoked' AND p->>'owner' IS NOT NULL AND p->>'key' IS NOT NULL
       AND p->>'service_ty' <> 'service' THEN
        RETURN jsonb_build_object('status', p_status, 'state', "{schema}".eager_state(p->>'service', p->>'key'));
    END IF;
    RETURN jsonb_build_object('status', p_status);
END
$$;

-- deliver_notification: put a result in an invocation's mailbox and wake it if suspended;
-- returns the process running it (to be told after commit), NULL if none.
CREATE OR REPLACE FUNCTION "{schema}".deliver_notification(
    p_target text, p_command integer, p_value bytea, p_failure_code integer, p_failure_message text,
    p_failure_metadata jsonb)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    v_owner text;
BEGIN
    INSERT INTO "{schema}".notification (invocation_id, command_index, value, failure_code, failure_message, failure_metadata)
    VALUES (p_target, p_command, p_value, p_failure_code, p_failure_message, p_failure_metadata);
    UPDATE "{schema}".task
       SET wakeups = wakeups + 1,
           status = CASE WHEN status = 'suspended' THEN 'ready' ELSE status END,
           run_at = CASE WHEN status = 'suspended' THEN now() ELSE run_at END
     WHERE invocation_id = p_target
    RETURNING lease_owner INTO v_owner;
    RETURN v_owner;
END
$$;

-- resolve_awakeable: complete an awakeable of an unfinished invocation with a value or a failure;
-- returns {"status": resolved | unknown | completed | already, "owner": process running it}.
-- The id's secret must match the one journaled with the awakeable. A second resolution is
-- ignored; should two race past this check, the invocation keeps the first it reads.
CREATE OR REPLACE FUNCTION "{schema}".resolve_awakeable(p jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    v_target text := p->>'invocation_id';
    v_command integer := (p->>'command_index')::integer;
BEGIN
    IF NOT EXISTS (
        SELECT 1 FROM "{schema}".journal
         WHERE invocation_id = v_target AND command_index = v_command AND entry_type = 'Awakeable'
           AND value = convert_to(p->>'id', 'UTF8')
    ) THEN
        RETURN jsonb_build_object('status', 'unknown');
    END IF;
    IF NOT EXISTS (SELECT 1 FROM "{schema}".task WHERE invocation_id = v_target) THEN
        RETURN jsonb_build_object('status', 'completed');
    END IF;
    IF EXISTS (SELECT 1 FROM "{schema}".journal WHERE invocation_id = v_target AND completes = v_command)
       OR EXISTS (SELECT 1 FROM "{schema}".notification WHERE invocation_id = v_target AND command_index = v_command) THEN
        RETURN jsonb_build_object('status', 'already');
    END IF;
    RETURN jsonb_build_object('status', 'resolved', 'owner', "{schema}".deliver_notification(
        v_target, v_command, decode(p->>'value', 'base64'), (p->>'failure_code')::integer,
        p->>'failure_message', p->'failure_metadata'));
END
$$;

-- lock_promise: serialise completing a durable promise with registering interest in it (until
-- the transaction ends). Flushes take these before their fence, sorted by name.
CREATE OR REPLACE FUNCTION "{schema}".lock_promise(p_service text, p_key text, p_name text)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(1919969026, hashtext(p_service || '/' || p_key || '/' || p_name));
END
$$;

-- get_promise: a promise's outcome for command p_command of p_invocation: {"completed": true,
-- "value"|"failure_*"} if completed; else {"completed": false}, and unless it is a peek the
-- command is registered to be told by complete_promise. The caller holds lock_promise.
CREATE OR REPLACE FUNCTION "{schema}".get_promise(
    p_service text, p_key text, p_name text, p_invocation text, p_command integer, p_peek boolean)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    v_promise record;
BEGIN
    SELECT * INTO v_promise FROM "{schema}".promise WHERE service = p_service AND key = p_key AND name = p_name;
    IF FOUND AND v_promise.completed THEN
        RETURN jsonb_build_object('completed', true, 'value', encode(v_promise.value, 'base64'),
                                  'failure_code', v_promise.failure_code,
                                  'failure_message', v_promise.failure_message,
                                  'failure_metadata', v_promise.failure_metadata);
    END IF;
    IF NOT p_peek THEN
        INSERT INTO "{schema}".promise_waiter (service, key, name, invocation_id, command_index)
        VALUES (p_service, p_key, p_name, p_invocation, p_command) ON CONFLICT DO NOTHING;
    END IF;
    RETURN jsonb_build_object('completed', false);
END
$$;

-- complete_promise: resolve or reject a promise, once; tells every registered waiter. Returns
-- {"status": "completed" | "already", "woken": [[invocation, owner], ...]}; the command that
-- completed it gets "completed" again when it repeats (a replay). The caller holds lock_promise.
CREATE OR REPLACE FUNCTION "{schema}".complete_promise(p_service text, p_key text, p jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    v_promise record;
    v_waiter record;
    v_woken jsonb := '[]'::jsonb;
BEGIN
    SELECT * INTO v_promise FROM "{schema}".promise WHERE service = p_service AND key = p_key AND name = p->>'name';
    IF FOUND AND v_promise.completed THEN
        IF v_promise.completed_by = p->>'invocation_id' AND v_promise.completed_by_command = (p->>'command')::integer THEN
            RETURN jsonb_build_object('status', 'completed', 'woken', v_woken);
        END IF;
        RETURN jsonb_build_object('status', 'already', 'woken', v_woken);
    END IF;
    INSERT INTO "{schema}".promise (service, key, name, completed, value, failure_code, failure_message,
                             failure_metadata, completed_by, completed_by_command, completed_at)
    VALUES (p_service, p_key, p->>'name', true, decode(p->>'value', 'base64'), (p->>'failure_code')::integer,
            p->>'failure_message', p->'failure_metadata', p->>'invocation_id', (p->>'command')::integer, now())
    ON CONFLICT (service, key, name) DO UPDATE
       SET completed = true, value = EXCLUDED.value, failure_code = EXCLUDED.failure_code,
           failure_message = EXCLUDED.failure_message, failure_metadata = EXCLUDED.failure_metadata,
           completed_by = EXCLUDED.completed_by, completed_by_command = EXCLUDED.completed_by_command,
           completed_at = EXCLUDED.completed_at;
    FOR v_waiter IN
        DELETE FROM "{schema}".promise_waiter WHERE service = p_service AND key = p_key AND name = p->>'name'
        RETURNING invocation_id, command_index
    LOOP
        v_woken := v_woken || jsonb_build_array(jsonb_build_array(v_waiter.invocation_id, "{schema}".deliver_notification(
            v_waiter.invocation_id, v_waiter.command_index, decode(p->>'value', 'base64'),
            (p->>'failure_code')::integer, p->>'failure_message', p->'failure_metadata')));
    END LOOP;
    RETURN jsonb_build_object('status', 'completed', 'woken', v_woken);
END
$$;

-- attach_invocation: the result of invocation p_target for command p_command of p_invocation:
-- {"completed": true, "value"|"failure_*"}; {"completed": false} after registering the command
-- to be told at completion; {"missing": true} if there is no such invocation. The share lock
-- on the target's row orders this before or after its completion, never across it.
CREATE OR REPLACE FUNCTION "{schema}".attach_invocation(p_target text, p_invocation text, p_command integer)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    v_target record;
BEGIN
    SELECT status, result, output, failure_code, failure_message, failure_metadata INTO v_target
      FROM "{schema}".invocation WHERE id = p_target FOR SHARE;
    IF NOT FOUND THEN
        RETURN jsonb_build_object('missing', true);
    END IF;
    IF v_target.status = 'completed' THEN
        RETURN jsonb_build_object('completed', true, 'value', encode(v_target.output, 'base64'),
                                  'failure_code', v_target.failure_code,
                                  'failure_message', v_target.failure_message,
                                  'failure_metadata', v_target.failure_metadata);
    END IF;
    INSERT INTO "{schema}".invocation_waiter (invocation_id, waiter_id, command_index)
    VALUES (p_target, p_invocation, p_command) ON CONFLICT DO NOTHING;
    RETURN jsonb_build_object('completed', false);
END
$$;

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

-- cancel_invocation: ask an invocation to stop. One that never ran (inboxed, scheduled) ends at
-- once with 409 "canceled"; a running, suspended, backing-off or paused one gets the cancel
-- signal in its mailbox (raised by its handler at its next await) and is made runnable.
-- Returns {"status": missing | completed | canceled | signalled, "owner", "waiter", "woken"}.
CREATE OR REPLACE FUNCTION "{schema}".cancel_invocation(p_id text)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    v_status text;
    v_owner text;
BEGIN
    -- lock order as in flush(): the task row, then the invocation row
    PERFORM 1 FROM "{schema}".task WHERE invocation_id = p_id FOR UPDATE;
    SELECT status INTO v_status FROM "{schema}".invocation WHERE id = p_id FOR UPDATE;
    IF NOT FOUND THEN
        RETURN jsonb_build_object('status', 'missing');
    ELSIF v_status = 'completed' THEN
        RETURN jsonb_build_object('status', 'completed');
    ELSIF v_status IN ('inboxed', 'scheduled') THEN
        RETURN jsonb_build_object('status', 'canceled') || "{schema}".finish_invocation(p_id, 409, 'canceled');
    END IF;
    UPDATE "{schema}".task SET status = 'ready', run_at = now()
     WHERE invocation_id = p_id AND status IN ('backing-off', 'paused');
    v_owner := "{schema}".deliver_notification(p_id, -1, NULL, NULL, NULL, NULL);
    RETURN jsonb_build_object('status', 'signalled', 'woken', jsonb_build_array(jsonb_build_array(p_id, v_owner)));
END
$$;

-- kill_invocation: end an invocation now with 409 "killed", without running any more of it: its
-- task row goes, so a running attempt's next write is refused by the fence; its object key
-- passes to the next in line (ready for any worker); its caller and attached handlers are told;
-- the invocations it called or sent to are killed too. Returns {"status": missing | completed
-- | killed, "waiter", "woken", "ready": whether work became ready}.
CREATE OR REPLACE FUNCTION "{schema}".kill_invocation(p_id text)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    v_inv record;
    v_child text;
    v_child_result jsonb;
    v_result jsonb;
    v_ready boolean := false;
BEGIN
    -- lock order as in flush(): the task row (which fences a running attempt), the invocation
    -- row, then the object key
    PERFORM 1 FROM "{schema}".task WHERE invocation_id = p_id FOR UPDATE;
    SELECT status, service, key, handler_ty INTO v_inv FROM "{schema}".invocation WHERE id = p_id FOR UPDATE;
    IF NOT FOUND THEN
        RETURN jsonb_build_object('status', 'missing');
    ELSIF v_inv.status = 'completed' THEN
        RETURN jsonb_build_object('status', 'completed');
    END IF;
    IF v_inv.handler_ty = 'exclusive' AND v_inv.status = 'invoked' THEN
        PERFORM "{schema}".lock_object_key(v_inv.service, COALESCE(v_inv.key, ''));
        v_ready := "{schema}".release_object_key(v_inv.service, COALESCE(v_inv.key, ''), p_id, NULL) IS NOT NULL;
    END IF;
    v_result := jsonb_build_object('status', 'killed') || "{schema}".finish_invocation(p_id, 409, 'killed');
    FOR v_child IN
        SELECT params->>'invocation_id' FROM "{schema}".journal
         WHERE invocation_id = p_id AND entry_type IN ('Call', 'OneWayCall') AND command_index IS NOT NULL
    LOOP
        v_child_result := "{schema}".kill_invocation(v_child);
        IF v_child_result->>'status' = 'killed' THEN
            v_result := jsonb_set(v_result, '{woken}', (v_result->'woken') || (v_child_result->'woken'));
            v_ready := v_ready OR (v_child_result->>'ready')::boolean;
        END IF;
    END LOOP;
    RETURN v_result || jsonb_build_object('ready', v_ready);
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
                INSERT INTO "{schema}".state (service, key, name, value)
                VALUES (v_item->>'service', v_item->>'key', v_item->>'name', decode(v_item->>'value', 'base64'))
                ON CONFLICT (service, key, name) DO UPDATE SET value = EXCLUDED.value;
            ELSIF v_item->>'op' = 'clear' THEN
                DELETE FROM "{schema}".state
                 WHERE service = v_item->>'service' AND key = v_item->>'key' AND name = v_item->>'name';
            ELSE
                DELETE FROM "{schema}".state WHERE service = v_item->>'service' AND key = v_item->>'key';
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

-- apply: run several requests (flushes, submissions, awakeable resolutions) as one transaction, in order; returns
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
