-- The operator verbs (purge, resume, pause, restart, ...) and the operator's command line, read-only over the introspection views.
-- Each statement: `-- name: <name>`, then its purpose; see restate_pg/store/queries.py.

-- name: purge_invocation
-- forget one completed invocation; returns its status before (NULL if
-- unknown) and whether it was purged
WITH target AS (
    SELECT id, status, service, key, handler_ty FROM {s}.invocation WHERE id = %(id)s FOR UPDATE
), done AS (
    SELECT * FROM target WHERE status = 'completed'
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
SELECT (SELECT status FROM target), (SELECT count(*) FROM gone) > 0

-- name: resume_invocation
-- make a paused, backing-off or suspended invocation run now; returns its
-- status (NULL if unknown), its task's status, and whether it was resumed
WITH target AS (
    SELECT i.status, t.status AS task_status
      FROM {s}.invocation i LEFT JOIN {s}.task t ON t.invocation_id = i.id
     WHERE i.id = %(id)s
), resumed AS (
    UPDATE {s}.task SET status = 'ready', run_at = now()
     WHERE invocation_id = %(id)s AND lease_owner IS NULL AND status IN ('paused', 'backing-off', 'suspended')
    RETURNING invocation_id
)
SELECT (SELECT status FROM target), (SELECT task_status FROM target), (SELECT count(*) FROM resumed) > 0

-- name: fire_timers
-- make the pending sleeps and delayed starts of one invocation (or of all) due now,
-- for tests (restate_pg.testing): each sleep's wake-up time becomes now and its completion goes to
-- the mailbox (in the order they would have fired), which wakes a suspended invocation and reaches
-- one waiting in memory; returns each invocation woken with the process running it (NULL if none),
-- then each delayed one made due
WITH sleeps AS (
    SELECT j.invocation_id, j.command_index
      FROM {s}.journal j JOIN {s}.task t ON t.invocation_id = j.invocation_id
     WHERE j.entry_type = 'Sleep' AND j.command_index IS NOT NULL
       AND (%(id)s::text IS NULL OR j.invocation_id = %(id)s::text)
       AND NOT EXISTS (SELECT 1 FROM {s}.journal c
                        WHERE c.invocation_id = j.invocation_id AND c.completes = j.command_index)
       AND NOT EXISTS (SELECT 1 FROM {s}.notification n
                        WHERE n.invocation_id = j.invocation_id AND n.command_index = j.command_index)
     ORDER BY j.invocation_id, j.sleep_wakeup_at, j.command_index
       FOR UPDATE OF t
), moved AS (
    UPDATE {s}.journal j SET sleep_wakeup_at = now()
      FROM sleeps
     WHERE j.invocation_id = sleeps.invocation_id AND j.command_index = sleeps.command_index
       AND j.entry_type = 'Sleep' AND j.sleep_wakeup_at > now()
), delayed AS (
    UPDATE {s}.task SET run_at = now()
     WHERE status = 'scheduled' AND lease_owner IS NULL AND run_at > now()
       AND (%(id)s::text IS NULL OR invocation_id = %(id)s::text)
    RETURNING invocation_id
)
SELECT invocation_id, {s}.deliver_notification(invocation_id, command_index, ''::bytea, NULL, NULL, NULL), true
  FROM sleeps
UNION ALL
SELECT invocation_id, NULL, false FROM delayed

-- name: pause_invocation
-- take an invocation's lease away (fencing its running attempt) and keep it
-- from running until resumed; returns its status (NULL if unknown), its task's status before,
-- whether it was paused now, and the process and epoch of the attempt that was stopped
WITH task_before AS (
    SELECT invocation_id, status, lease_owner, epoch FROM {s}.task WHERE invocation_id = %(id)s FOR UPDATE
), paused AS (
    UPDATE {s}.task t SET status = 'paused', lease_owner = NULL, run_at = 'infinity'
      FROM task_before b
     WHERE t.invocation_id = b.invocation_id AND b.status IN ('ready', 'running', 'suspended', 'backing-off')
    RETURNING b.lease_owner, b.epoch
)
SELECT (SELECT status FROM {s}.invocation WHERE id = %(id)s), (SELECT status FROM task_before),
       (SELECT count(*) FROM paused) > 0, (SELECT lease_owner FROM paused), (SELECT epoch FROM paused)

-- name: purge_journal
-- forget the journal of a completed invocation, keeping its status and result;
-- returns its status (NULL if unknown)
WITH target AS (
    SELECT id, status FROM {s}.invocation WHERE id = %(id)s FOR UPDATE
), gone AS (
    DELETE FROM {s}.journal WHERE invocation_id IN (SELECT id FROM target WHERE status = 'completed')
)
SELECT status FROM target

-- name: restart_source
-- what restarting a completed invocation as a new one needs to check: its
-- status, target kind and journal (every row up to the prefix end, and whether any row remains)
SELECT i.status, i.service, i.key, i.handler_ty,
       (SELECT max(index) FROM {s}.journal WHERE invocation_id = i.id) AS last_index,
       (SELECT count(*) FROM {s}.journal j
         WHERE j.invocation_id = i.id AND j.index <= %(prefix)s AND j.command_index IS NOT NULL
           AND NOT j.completed
           AND NOT EXISTS (SELECT 1 FROM {s}.journal n
                            WHERE n.invocation_id = i.id AND n.completes = j.command_index
                              AND n.index <= %(prefix)s)) AS uncompleted
  FROM {s}.invocation i WHERE i.id = %(id)s

-- name: restart_invocation
-- create a new invocation with the input, headers and flow control (scope, limit key, priority) of a
-- completed one (`submit_invocation`), keeping the old one from being purged meanwhile, unless the journal
-- prefix to replay is gone; returns the new invocation's status (NULL if not created) and how
-- many old entries are up to the prefix end; no row if the old invocation is gone
SELECT CASE WHEN %(prefix)s = 0 OR kept > 0 THEN {s}.submit_invocation(jsonb_build_object(
           'id', %(new_id)s, 'service', service, 'handler', handler, 'key', key,
           'service_ty', service_ty, 'handler_ty', handler_ty, 'input', encode(input, 'base64'),
           'headers', headers, 'invoked_by', 'restart_as_new',
           'scope', scope, 'limit_key', limit_key, 'priority', priority)) END,
       kept
  FROM (SELECT i.*, (SELECT count(*) FROM {s}.journal j WHERE j.invocation_id = i.id AND j.index <= %(prefix)s) AS kept
          FROM {s}.invocation i WHERE i.id = %(id)s AND i.status = 'completed' FOR SHARE) source

-- name: mark_restarted
-- record which invocation a restarted one re-runs; one that replays a journal
-- prefix is pinned to the deployment that wrote it
WITH marked AS (
    UPDATE {s}.invocation r
       SET restarted_from = %(id)s,
           deployment_id = CASE WHEN %(prefix)s > 0 THEN (SELECT deployment_id FROM {s}.invocation WHERE id = %(id)s) END
     WHERE r.id = %(new_id)s
    RETURNING r.id, r.deployment_id
)
UPDATE {s}.task t SET deployment_id = marked.deployment_id FROM marked WHERE t.invocation_id = marked.id

-- name: copy_journal_prefix
-- give a restarted invocation the journal of the old one up to a position,
-- so that its replay returns the recorded results (a recorded cancellation is not carried over)
INSERT INTO {s}.journal (invocation_id, index, command_index, completes, entry_type, name, params, completed,
                         value, failure_code, failure_message, failure_metadata, sleep_wakeup_at)
SELECT %(new_id)s, index, command_index, completes, entry_type, name, params, completed,
       value, failure_code, failure_message, failure_metadata, sleep_wakeup_at
  FROM {s}.journal
 WHERE invocation_id = %(id)s AND index <= %(prefix)s AND entry_type <> 'Cancel'

-- name: operator_list_invocations
-- invocations matching the given filters (each may be NULL), newest first; attempts of
-- completed ones from the invocation row (sys_invocation has none for them, as Restate's);
-- stranded: unleased and pinned to a deployment that no registered worker runs or resumes
WITH served AS (
    SELECT w.deployment_id AS id FROM {s}.worker w
    UNION
    SELECT unnest(d.compatible_with) FROM {s}.deployment d
     WHERE EXISTS (SELECT 1 FROM {s}.worker w WHERE w.deployment_id = d.id)
)
SELECT id, target, status,
       COALESCE(retry_count, (SELECT i.attempts FROM {s}.invocation i WHERE i.id = v.id)) AS attempts,
       created_at, modified_at,
       COALESCE(completion_failure, last_failure) AS failure, pinned_deployment_id AS deployment,
       CASE WHEN status IN ('ready', 'suspended', 'backing-off', 'paused')
                 AND last_attempt_deployment_id IS NOT NULL
                 AND NOT EXISTS (SELECT 1 FROM served WHERE served.id = last_attempt_deployment_id)
            THEN true END AS stranded
  FROM {s}.sys_invocation v
 WHERE (%(service)s::text IS NULL OR target_service_name = %(service)s)
   AND (%(handler)s::text IS NULL OR target_handler_name = %(handler)s)
   AND (%(key)s::text IS NULL OR target_service_key = %(key)s)
   AND (%(statuses)s::text[] IS NULL OR status = ANY(%(statuses)s))
   AND (%(older_than_s)s::float8 IS NULL OR created_at < now() - %(older_than_s)s * interval '1 second')
   AND (%(newer_than_s)s::float8 IS NULL OR created_at >= now() - %(newer_than_s)s * interval '1 second')
 ORDER BY created_at DESC
 LIMIT %(limit)s

-- name: operator_stranded
-- the invocations no worker can resume, per deployment (see stranded_invocations), with
-- the newest deployment that has registered workers and what it resumes already: the command
-- that releases them names it
WITH served AS (
    SELECT w.deployment_id AS id FROM {s}.worker w
    UNION
    SELECT unnest(d.compatible_with) FROM {s}.deployment d
     WHERE EXISTS (SELECT 1 FROM {s}.worker w WHERE w.deployment_id = d.id)
), stranded AS (
    SELECT deployment_id AS deployment, count(*)::int AS invocations FROM {s}.task
     WHERE lease_owner IS NULL AND deployment_id IS NOT NULL GROUP BY 1
    HAVING NOT EXISTS (SELECT 1 FROM served WHERE served.id = deployment_id)
), live AS (
    SELECT d.id, d.compatible_with FROM {s}.deployment d
     WHERE EXISTS (SELECT 1 FROM {s}.worker w WHERE w.deployment_id = d.id)
     ORDER BY d.created_at DESC LIMIT 1
)
SELECT s.deployment, s.invocations, live.id AS live_deployment, live.compatible_with AS resumes
  FROM stranded s LEFT JOIN live ON true ORDER BY s.deployment

-- name: operator_describe_invocation
-- everything sys_invocation knows of one invocation, and its attempts (completed ones' too)
SELECT v.*, COALESCE(v.retry_count, i.attempts) AS attempts
  FROM {s}.sys_invocation v LEFT JOIN {s}.invocation i ON i.id = v.id
 WHERE v.id = %(id)s

-- name: operator_journal
-- one invocation's journal as a timeline
SELECT index, entry_type, name, completed, invoked_id, invoked_target, sleep_wakeup_at, promise_name,
       entry_lite_json, appended_at
  FROM {s}.sys_journal WHERE id = %(id)s ORDER BY index

-- name: operator_target_invocations
-- ids of the completed (or else the unfinished) invocations of a
-- service, a handler, or an object key's handler
SELECT id FROM {s}.sys_invocation
 WHERE target_service_name = %(service)s
   AND (%(handler)s::text IS NULL OR target_handler_name = %(handler)s)
   AND (%(key)s::text IS NULL OR target_service_key = %(key)s)
   AND (status = 'completed') = %(completed)s
 ORDER BY created_at

-- name: operator_services
-- the registered services, their handlers and latest deployment
SELECT name, ty AS type, revision, public, deployment_id AS deployment,
       (SELECT string_agg(h->>'name', ', ' ORDER BY h->>'name') FROM jsonb_array_elements(handlers) h) AS handlers
  FROM {s}.service ORDER BY name

-- name: operator_deployments
-- the deployments, oldest first, with their live workers and in-flight
-- invocations (to drain before switching one off), and an SDK endpoint's uri
SELECT d.id, d.created_at,
       (SELECT count(*) FROM {s}.worker w WHERE w.deployment_id = d.id) AS workers,
       (SELECT count(*) FROM {s}.task t WHERE t.deployment_id = d.id) AS in_flight,
       array_to_string(d.compatible_with, ', ') AS resumes_also,
       (SELECT string_agg(e->>'name', ', ') FROM jsonb_array_elements(d.services) e) AS services,
       d.uri AS endpoint
  FROM {s}.deployment d ORDER BY d.created_at

-- name: operator_state
-- the state entries of one object key, raw and as text
SELECT key, value_utf8, value FROM {s}.state
 WHERE service_name = %(service)s AND service_key = %(key)s AND (%(name)s::text IS NULL OR key = %(name)s)
 ORDER BY key

-- name: scope_operator_query
-- in an operator's read-only transaction, find restate-pg's views first
-- (the application's tables still resolve) and cancel the query after a timeout
SELECT set_config('search_path', '{s}, ' || current_setting('search_path'), true),
       set_config('statement_timeout', %(timeout_ms)s, true)
