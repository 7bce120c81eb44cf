-- release_object_key: hand an object key to the head of its inbox, or free it; returns the
-- invocation that got the key, leased to p_owner when given (to run it at once, pinned to that
-- worker's deployment), else ready. One already pinned to another deployment (restarted with a
-- journal prefix) is made ready for its own deployment instead, and NULL returned to p_owner.
-- Only the key's holder may let it go: anyone else is refused with a warning, and nothing changes.
-- The key's lock_object_key is taken only to free the key: handing it to the head of a non-empty
-- inbox races with nothing (a submission appends at the tail, and sees the key held either way),
-- so a completion does not wait for a submission to the same key that holds the lock; an inbox
-- that looks empty is looked at again under the lock, as a submission may be joining it. One
-- under flow control (scoped, or with a priority)
-- is made ready for a claim, which checks its rules, and NULL returned to p_owner; so is one whose
-- service or handler a rule names (marked with `flow_target`, as `submit_invocation` marks).
CREATE OR REPLACE FUNCTION {s}.release_object_key(p_service text, p_key text, p_holder text, p_owner text)
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
    v_handler text;
    v_target text;
BEGIN
    SELECT invocation_id INTO v_holder FROM {s}.object_lock WHERE service = p_service AND key = p_key;
    IF v_holder IS DISTINCT FROM p_holder THEN
        RAISE WARNING 'restate-pg: invocation % does not hold object key %/% (held by %); the key is left as it is',
            p_holder, p_service, p_key, COALESCE(v_holder, 'nobody');
        RETURN NULL;
    END IF;
    DELETE FROM {s}.inbox
     WHERE seq = (SELECT seq FROM {s}.inbox WHERE service = p_service AND key = p_key ORDER BY seq LIMIT 1)
    RETURNING invocation_id INTO v_next;
    IF v_next IS NULL THEN  -- under the lock, a submission that joined meanwhile has committed: seen now
        PERFORM {s}.lock_object_key(p_service, p_key);
        DELETE FROM {s}.inbox
         WHERE seq = (SELECT seq FROM {s}.inbox WHERE service = p_service AND key = p_key ORDER BY seq LIMIT 1)
        RETURNING invocation_id INTO v_next;
        IF v_next IS NULL THEN
            DELETE FROM {s}.object_lock WHERE service = p_service AND key = p_key;
            RETURN NULL;
        END IF;
    END IF;
    UPDATE {s}.object_lock SET invocation_id = v_next, acquired_at = now()
     WHERE service = p_service AND key = p_key;
    IF v_owner IS NOT NULL THEN
        SELECT deployment_id INTO v_deployment FROM {s}.worker WHERE id = v_owner;
    END IF;
    UPDATE {s}.invocation SET status = 'invoked', modified_at = now(), deployment_id = COALESCE(deployment_id, v_deployment)
     WHERE id = v_next
    RETURNING deployment_id, scope, limit_key, priority, handler INTO v_pinned, v_scope, v_limit_key, v_priority, v_handler;
    PERFORM pg_advisory_xact_lock_shared(1919969027, hashtext(p_service));  -- as submit_invocation's probe
    IF EXISTS (SELECT 1 FROM {s}.flow_rule r
                WHERE r.pattern IN ('service:' || p_service, 'service:' || p_service || '/' || v_handler) AND NOT r.disabled) THEN
        v_target := p_service || '/' || v_handler;
    END IF;
    IF v_pinned IS DISTINCT FROM v_deployment OR v_scope IS NOT NULL OR v_priority <> 0 OR v_target IS NOT NULL THEN
        v_owner := NULL;
        v_deployment := v_pinned;
    END IF;
    IF v_owner IS NULL THEN
        INSERT INTO {s}.task (invocation_id, service, status, run_at, deployment_id, scope, limit_key, priority,
                              flow_target, flow_key)
        VALUES (v_next, p_service, 'ready', now(), v_deployment, v_scope, v_limit_key, v_priority,
                v_target, CASE WHEN v_target IS NOT NULL THEN COALESCE(v_limit_key, p_key) END);
        IF p_owner IS NOT NULL THEN
            RETURN NULL;
        END IF;
    ELSE
        INSERT INTO {s}.task (invocation_id, service, status, run_at, lease_owner, epoch, attempt, last_start_at,
                              deployment_id)
        VALUES (v_next, p_service, 'running', now(), v_owner, 1, 1, now(), v_deployment);
    END IF;
    RETURN v_next;
END
$$;
