-- Worker processes and deployments: registration, heartbeats, leases given back.
-- Each statement: `-- name: <name>`, then its purpose; see restate_pg/store/queries.py.

-- name: register_worker
-- announce a worker process, its services, the deployment it runs and its lease length
INSERT INTO {s}.worker (id, hostname, pid, services, deployment_id, lease_ms)
VALUES (%(id)s, %(hostname)s, %(pid)s, %(services)s, %(deployment)s, %(lease_ms)s)
RETURNING now() AS db_now

-- name: register_deployment
-- record an application version and the services it hosts
INSERT INTO {s}.deployment (id, services) VALUES (%(deployment)s, %(services)s)
ON CONFLICT (id) DO UPDATE SET services = EXCLUDED.services, last_seen_at = now()

-- name: register_services
-- make a deployment the latest of its services unless a newer one is; a
-- service that moves to another deployment gets a new revision, and the operator's overrides go
-- (`ty` as in invocation.service_ty; the documents carry Restate's admin names)
INSERT INTO {s}.service AS svc (name, ty, deployment_id, handlers)
SELECT s->>'name',
       CASE s->>'ty' WHEN 'VirtualObject' THEN 'virtual_object' WHEN 'Workflow' THEN 'workflow' ELSE 'service' END,
       %(deployment)s, s->'handlers'
  FROM jsonb_array_elements(%(services)s) AS s
ON CONFLICT (name) DO UPDATE
   SET ty = EXCLUDED.ty, handlers = EXCLUDED.handlers, deployment_id = EXCLUDED.deployment_id,
       revision = svc.revision + 1, public = true, idempotency_retention = NULL, workflow_retention = NULL,
       journal_retention = NULL, inactivity_timeout = NULL, abort_timeout = NULL, modified_at = now()
 WHERE svc.deployment_id <> EXCLUDED.deployment_id
   AND COALESCE((SELECT created_at FROM {s}.deployment WHERE id = svc.deployment_id), '-infinity')
       < (SELECT created_at FROM {s}.deployment WHERE id = EXCLUDED.deployment_id)

-- name: heartbeat
-- keep a worker's leases alive, and give back those it holds without an attempt for
-- them (a claim whose answer was lost, a hand-back that failed) once they are older than the
-- grace; no row back means the worker was declared dead
WITH alive AS (
    UPDATE {s}.worker SET heartbeat_at = now() WHERE id = %(id)s RETURNING now() AS db_now
), unheld AS (
    SELECT t.invocation_id FROM {s}.task t
     WHERE t.lease_owner = %(id)s AND t.invocation_id <> ALL(%(held)s::text[])
       AND t.last_start_at < now() - %(grace_ms)s::bigint * interval '1 millisecond'
       FOR UPDATE SKIP LOCKED
), released AS (
    UPDATE {s}.task t SET lease_owner = NULL, status = 'ready', run_at = now()
      FROM unheld, alive WHERE t.invocation_id = unheld.invocation_id
    RETURNING t.invocation_id
)
SELECT db_now, ARRAY(SELECT invocation_id FROM released) FROM alive

-- name: reap_workers
-- forget workers whose heartbeat expired (each by its own lease; the reaper's for a worker that
-- recorded none), and make claimable every task leased to a worker that is gone; rows locked by a
-- transaction under way are skipped for the next reap, so that no worker ever waits here for
-- another worker's locks (a frozen one's, say)
WITH dead AS (
    DELETE FROM {s}.worker WHERE id IN (
        SELECT id FROM {s}.worker
         WHERE heartbeat_at < now() - COALESCE(lease_ms, %(lease_ms)s)::bigint * interval '1 millisecond'
           FOR UPDATE SKIP LOCKED)
    RETURNING id
), orphaned AS (
    SELECT t.invocation_id FROM {s}.task t
     WHERE t.lease_owner IS NOT NULL
       AND (t.lease_owner IN (SELECT id FROM dead)
            OR NOT EXISTS (SELECT 1 FROM {s}.worker w WHERE w.id = t.lease_owner))
       FOR UPDATE OF t SKIP LOCKED
)
UPDATE {s}.task t SET lease_owner = NULL, status = 'ready', run_at = now()
  FROM orphaned WHERE t.invocation_id = orphaned.invocation_id
RETURNING t.invocation_id

-- name: unregister_worker
-- a worker leaving cleanly hands its unfinished tasks back at once
WITH gone AS (DELETE FROM {s}.worker WHERE id = %(id)s RETURNING id)
UPDATE {s}.task SET lease_owner = NULL, status = 'ready', run_at = now()
  FROM gone WHERE task.lease_owner = gone.id

-- name: db_now
-- the database's clock, which leases, timers and retention are measured by
SELECT now()

-- name: check_reachable
-- the cheapest query: does the server answer on a fresh connection (before starting a long-running process)
SELECT 1
