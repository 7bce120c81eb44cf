-- start_due_scheduled: delayed invocations whose time has come start as a call would: one of an
-- exclusive handler takes its free object key or queues behind it, any other becomes ready. Up
-- to p_limit of the earliest are taken (rows locked elsewhere are skipped), and their keys are
-- locked in (service, key) order so that concurrent callers never wait for each other in a cycle.
CREATE OR REPLACE FUNCTION {s}.start_due_scheduled(p_services text[], p_limit integer)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    v_due record;
    v_started integer := 0;
BEGIN
    FOR v_due IN
        SELECT d.invocation_id, i.service, i.key, i.handler_ty = 'exclusive' AS exclusive
          FROM (SELECT t.invocation_id, t.run_at FROM {s}.task t
                 WHERE t.status = 'scheduled' AND t.run_at <= now() AND t.lease_owner IS NULL
                   AND t.service = ANY(p_services)
                 ORDER BY t.run_at
                 LIMIT p_limit
                   FOR UPDATE SKIP LOCKED) d
          JOIN {s}.invocation i ON i.id = d.invocation_id
         ORDER BY i.service, i.key, d.run_at
    LOOP
        IF v_due.exclusive THEN
            PERFORM {s}.lock_object_key(v_due.service, v_due.key);
            IF EXISTS (SELECT 1 FROM {s}.object_lock WHERE service = v_due.service AND key = v_due.key) THEN
                UPDATE {s}.invocation SET status = 'inboxed', modified_at = now() WHERE id = v_due.invocation_id;
                DELETE FROM {s}.task WHERE invocation_id = v_due.invocation_id;
                INSERT INTO {s}.inbox (service, key, invocation_id)
                VALUES (v_due.service, v_due.key, v_due.invocation_id);
                CONTINUE;
            END IF;
            INSERT INTO {s}.object_lock (service, key, invocation_id)
            VALUES (v_due.service, v_due.key, v_due.invocation_id);
        END IF;
        UPDATE {s}.invocation SET status = 'invoked', modified_at = now() WHERE id = v_due.invocation_id;
        UPDATE {s}.task SET status = 'ready' WHERE invocation_id = v_due.invocation_id;
        v_started := v_started + 1;
    END LOOP;
    RETURN v_started;
END
$$;
