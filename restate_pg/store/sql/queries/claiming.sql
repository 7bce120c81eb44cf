-- Claiming due work, and what a new attempt loads.
-- Each statement: `-- name: <name>`, then its purpose; see restate_pg/store/queries.py.

-- name: start_due_scheduled
-- delayed invocations whose time has come start as calls would (`start_due_scheduled()`)
SELECT {s}.start_due_scheduled(%(services)s, %(limit)s)

-- name: claim_tasks
-- lease due, unleased tasks of the given services to a worker: those not started
-- yet (of the services in `fresh`: those the worker's deployment is the latest of) and those
-- pinned to a deployment it may resume; each is pinned to the worker's deployment,
-- which from then on writes its journal. A task of an exclusive handler is leased only while its
-- invocation holds its object key: checked by the statement that gives the lease, so that no
-- path can start one beside the key's holder. Tasks under flow control (scoped, with a priority,
-- or of a service or handler a rule names) are leased by `claim_flow()` first, which runs only when one empty-or-not index
-- probe finds any (docs/flow-control.md); the others fill what is left of the batch (the rest of
-- `due` stays unleased; its row locks go with the statement)
WITH flow AS (
    SELECT * FROM {s}.claim_flow(%(owner)s, %(services)s, %(limit)s, %(deployments)s, %(fresh)s, %(deployment)s)
     WHERE EXISTS (SELECT 1 FROM {s}.task f
                    WHERE f.lease_owner IS NULL AND (f.scope IS NOT NULL OR f.priority <> 0 OR f.flow_target IS NOT NULL)
                      AND f.run_at <= now() AND f.status <> 'scheduled')
), due AS (
    SELECT t.invocation_id, t.status, t.deployment_id, t.run_at FROM {s}.task t
     WHERE t.lease_owner IS NULL AND t.run_at <= now() AND t.status <> 'scheduled'
       AND t.scope IS NULL AND t.priority = 0 AND t.flow_target IS NULL
       AND t.service = ANY(%(services)s)
       AND ((t.deployment_id IS NULL AND t.service = ANY(%(fresh)s)) OR t.deployment_id = ANY(%(deployments)s))
       AND NOT EXISTS (
           SELECT 1 FROM {s}.invocation i
            WHERE i.id = t.invocation_id AND i.handler_ty = 'exclusive'
              AND NOT EXISTS (SELECT 1 FROM {s}.object_lock l
                               WHERE l.service = i.service AND l.key = i.key AND l.invocation_id = i.id))
     ORDER BY t.run_at
     LIMIT %(limit)s
       FOR UPDATE OF t SKIP LOCKED
), claimed AS (
    UPDATE {s}.task t
       SET lease_owner = %(owner)s, epoch = t.epoch + 1, attempt = t.attempt + 1,
           status = 'running', last_start_at = now(), deployment_id = %(deployment)s
      FROM (SELECT d.*, row_number() OVER (ORDER BY d.run_at) AS n FROM due d) due
     WHERE t.invocation_id = due.invocation_id
       AND due.n <= %(limit)s - (SELECT count(*) FROM flow)  -- what claim_flow left of the batch
    RETURNING t.invocation_id, t.epoch, t.attempt, t.wakeups, due.status AS previous_status,
              due.deployment_id IS DISTINCT FROM %(deployment)s AS pinned_now,
              EXTRACT(EPOCH FROM now() - due.run_at)::float8 AS lag
), pinned AS (
    UPDATE {s}.invocation SET deployment_id = %(deployment)s
     WHERE id IN (SELECT invocation_id FROM claimed WHERE pinned_now)
)
SELECT invocation_id, epoch, attempt, wakeups, previous_status, now() AS db_now, lag FROM claimed
UNION ALL
SELECT invocation_id, epoch, attempt, wakeups, previous_status, now() AS db_now, lag FROM flow

-- name: next_due
-- seconds until the earliest unleased task this worker may claim is due
SELECT EXTRACT(EPOCH FROM (min(run_at) - now()))::float8 AS seconds
  FROM {s}.task
 WHERE lease_owner IS NULL AND run_at < 'infinity' AND service = ANY(%(services)s)
   AND ((deployment_id IS NULL AND service = ANY(%(fresh)s)) OR deployment_id = ANY(%(deployments)s))

-- name: compatible_deployments
-- the deployments whose pinned invocations a deployment may resume
SELECT compatible_with FROM {s}.deployment WHERE id = %(deployment)s

-- name: mark_compatible
-- let a deployment's workers resume invocations pinned to others (or, with an
-- empty list, only their own); returns whether the deployment exists
UPDATE {s}.deployment SET compatible_with = %(compatible)s WHERE id = %(deployment)s RETURNING id

-- name: take_over_deployments
-- development (`restate-pg dev` restarted after an edit): let a deployment resume
-- the unfinished invocations pinned to every other one, replacing any earlier marking; returns
-- those deployments and how many invocations each has pinned
WITH pinned AS (
    SELECT deployment_id AS deployment, count(*)::int AS invocations FROM {s}.task
     WHERE deployment_id IS NOT NULL AND deployment_id <> %(deployment)s
       AND deployment_id NOT IN (SELECT id FROM {s}.deployment WHERE uri IS NOT NULL)  -- SDK endpoints go on
     GROUP BY 1
), marked AS (
    UPDATE {s}.deployment SET compatible_with = ARRAY(SELECT deployment FROM pinned ORDER BY deployment)
     WHERE id = %(deployment)s
)
SELECT deployment, invocations FROM pinned ORDER BY deployment

-- name: stranded_invocations
-- per deployment that no registered worker runs or resumes (marked compatible), its
-- unleased unfinished invocations pinned to it: nothing can resume them (housekeeping and
-- metrics only, never a claim)
WITH served AS (
    SELECT w.deployment_id AS id FROM {s}.worker w
    UNION
    SELECT unnest(d.compatible_with) FROM {s}.deployment d
     WHERE EXISTS (SELECT 1 FROM {s}.worker w WHERE w.deployment_id = d.id)
    UNION  -- SDK endpoints: driven by every worker
    SELECT d.id FROM {s}.deployment d WHERE d.uri IS NOT NULL AND EXISTS (SELECT 1 FROM {s}.worker)
), pinned AS (
    SELECT deployment_id AS deployment, count(*)::int AS invocations FROM {s}.task
     WHERE lease_owner IS NULL AND deployment_id IS NOT NULL GROUP BY 1
)
SELECT deployment, invocations FROM pinned
 WHERE NOT EXISTS (SELECT 1 FROM served WHERE served.id = pinned.deployment) ORDER BY 1

-- name: task_gauges
-- invocations not completed per service and status (ready: due and unleased), for metrics
SELECT service, CASE WHEN run_at <= now() THEN 'ready' ELSE status END, count(*)::int
  FROM {s}.task WHERE lease_owner IS NULL GROUP BY 1, 2
UNION ALL
SELECT service, 'running', count(*)::int FROM {s}.task WHERE lease_owner IS NOT NULL GROUP BY 1

-- name: load_invocations
-- what a new attempt needs to know about its invocations
SELECT id, service, handler, key, input, headers, idempotency_key, caller_id, caller_command, status,
       scope, limit_key
  FROM {s}.invocation WHERE id = ANY(%(ids)s)

-- name: load_journals
-- the recorded journals of invocations, in write order
SELECT invocation_id, index, command_index, completes, entry_type, name, params, completed, value,
       failure_code, failure_message, failure_metadata, sleep_wakeup_at, message
  FROM {s}.journal WHERE invocation_id = ANY(%(ids)s)
 ORDER BY invocation_id, index

-- name: load_mailboxes
-- undelivered notifications of freshly claimed invocations
SELECT invocation_id, seq, command_index, signal_name, value, failure_code, failure_message, failure_metadata,
       created_at
  FROM {s}.notification WHERE invocation_id = ANY(%(ids)s)
 ORDER BY seq

-- name: read_mailbox
-- the wake-up counter and the undelivered notifications of one invocation
SELECT t.wakeups, n.seq, n.command_index, n.signal_name, n.value, n.failure_code, n.failure_message, n.failure_metadata,
       n.created_at
  FROM {s}.task t
  LEFT JOIN {s}.notification n ON n.invocation_id = t.invocation_id AND n.seq > %(after)s
 WHERE t.invocation_id = %(id)s
 ORDER BY n.seq

-- name: load_state
-- every state value of one object key
SELECT name, value FROM {s}.state_entry WHERE service = %(service)s AND key = %(key)s
