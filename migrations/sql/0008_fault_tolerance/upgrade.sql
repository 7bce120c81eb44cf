-- Revision 0008 (0008_fault_tolerance), upgrade. Frozen once released, never edited (migrations/README.md).
CREATE INDEX task_scheduled ON "{schema}".task (run_at) WHERE status = 'scheduled';

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

-- start_due_scheduled: delayed invocations whose time has come start as a call would: one of an
-- exclusive handler takes its free object key or queues behind it, any other becomes ready. Up
-- to p_limit of the earliest are taken (rows locked elsewhere are skipped), and their keys are
-- locked in (service, key) order so that concurrent callers never wait for each other in a cycle.
CREATE OR REPLACE FUNCTION "{schema}".start_due_scheduled(p_services text[], p_limit integer)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    v_due record;
    v_started integer := 0;
BEGIN
    FOR v_due IN
        SELECT d.invocation_id, i.service, i.key, i.handler_ty = 'exclusive' AS exclusive
          FROM (SELECT t.invocation_id, t.run_at FROM "{schema}".task t
                 WHERE t.status = 'scheduled' AND t.run_at <= now() AND t.lease_owner IS NULL
                   AND t.service = ANY(p_services)
                 ORDER BY t.run_at
                 LIMIT p_limit
                   FOR UPDATE SKIP LOCKED) d
          JOIN "{schema}".invocation i ON i.id = d.invocation_id
         ORDER BY i.service, i.key, d.run_at
    LOOP
        IF v_due.exclusive THEN
            PERFORM "{schema}".lock_object_key(v_due.service, v_due.key);
            IF EXISTS (SELECT 1 FROM "{schema}".object_lock WHERE service = v_due.service AND key = v_due.key) THEN
                UPDATE "{schema}".invocation SET status = 'inboxed', modified_at = now() WHERE id = v_due.invocation_id;
                DELETE FROM "{schema}".task WHERE invocation_id = v_due.invocation_id;
                INSERT INTO "{schema}".inbox (service, key, invocation_id)
                VALUES (v_due.service, v_due.key, v_due.invocation_id);
                CONTINUE;
            END IF;
            INSERT INTO "{schema}".object_lock (service, key, invocation_id)
            VALUES (v_due.service, v_due.key, v_due.invocation_id);
        END IF;
        UPDATE "{schema}".invocation SET status = 'invoked', modified_at = now() WHERE id = v_due.invocation_id;
        UPDATE "{schema}".task SET status = 'ready' WHERE invocation_id = v_due.invocation_id;
        v_started := v_started + 1;
    END LOOP;
    RETURN v_started;
END
$$;
