-- Forgetting completed invocations past their retention.
-- Each statement: `-- name: <name>`, then its purpose; see restate_pg/store/queries.py.

-- name: purge_expired
-- forget completed invocations past their retention; returns how many
WITH done AS (
    SELECT id, service, key, handler_ty FROM {s}.invocation
     WHERE retain_until < now() AND status = 'completed'
     ORDER BY retain_until
     LIMIT %(limit)s
       FOR UPDATE SKIP LOCKED
), journal AS (
    DELETE FROM {s}.journal WHERE invocation_id IN (SELECT id FROM done)
), workflow_state AS (
    DELETE FROM {s}.state_entry s USING done d
     WHERE d.handler_ty = 'workflow' AND s.service = d.service AND s.key = d.key
), promises AS (
    DELETE FROM {s}.promise p USING done d
     WHERE d.handler_ty = 'workflow' AND p.service = d.service AND p.key = d.key
), gone AS (
    DELETE FROM {s}.invocation WHERE id IN (SELECT id FROM done) RETURNING id
)
SELECT count(*) FROM gone
