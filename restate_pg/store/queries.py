"""Every SQL statement restate-pg runs, each with a name and a one-line purpose.

`{s}` stands for the quoted schema name and is filled in once, when a `Store` is created.
`docs/invocation-lifecycle.md` explains which transaction each statement belongs to.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_SCHEMA_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


def quote_schema(schema: str) -> str:
    if not _SCHEMA_NAME.match(schema):
        raise ValueError(f"invalid schema name {schema!r}: use letters, digits and underscores")
    return f'"{schema}"'


# The CTEs that put a just-created or just-started invocation (`inv`) of an exclusive handler
# either in possession of its object key or at the end of the key's inbox. The caller holds the
# key's advisory lock (LOCK_OBJECT_KEY), so "the key is busy" cannot change under it.
_TAKE_KEY_OR_QUEUE = """locked AS (
    INSERT INTO {s}.object_lock (service, key, invocation_id)
    SELECT %(service)s, %(key)s, id FROM inv WHERE %(exclusive)s::boolean AND status = 'invoked'
), queued AS (
    INSERT INTO {s}.inbox (service, key, invocation_id)
    SELECT %(service)s, %(key)s, id FROM inv WHERE status = 'inboxed'"""

# -- submitting --------------------------------------------------------------------------------

LOCK_OBJECT_KEY = """
-- lock_object_key: serialise every change of who holds an object key (transaction-scoped)
SELECT {s}.lock_object_key(%(service)s, %(key)s)
"""


GET_INVOCATION = """
-- get_invocation: the status and result of one invocation
SELECT id, service, handler, key, status, result, output, failure_code, failure_message,
       failure_metadata, created_at, completed_at, retain_until, now() AS db_now
  FROM {s}.invocation WHERE id = %(id)s
"""

WAIT_FOR_INVOCATION = """
-- wait_for_invocation: register a process as waiting for a result, and read the current status
UPDATE {s}.invocation
   SET waiter = CASE WHEN waiter IS NULL OR waiter = %(waiter)s THEN %(waiter)s ELSE '*' END
 WHERE id = %(id)s
RETURNING status, result, output, failure_code, failure_message, failure_metadata
"""

# -- claiming ----------------------------------------------------------------------------------

START_DUE_SCHEDULED = """
-- start_due_scheduled: delayed invocations whose time has come start as calls would (`start_due_scheduled()`)
SELECT {s}.start_due_scheduled(%(services)s, %(limit)s)
"""

CLAIM_TASKS = """
-- claim_tasks: lease due, unleased tasks of the given services to a worker: those not started
-- yet and those pinned to a deployment it may resume; each is pinned to the worker's deployment,
-- which from then on writes its journal. A task of an exclusive handler is leased only while its
-- invocation holds its object key: checked by the statement that gives the lease, so that no
-- path can start one beside the key's holder
WITH due AS (
    SELECT t.invocation_id, t.status, t.deployment_id, t.run_at FROM {s}.task t
     WHERE t.lease_owner IS NULL AND t.run_at <= now() AND t.status <> 'scheduled'
       AND t.service = ANY(%(services)s)
       AND (t.deployment_id IS NULL OR t.deployment_id = ANY(%(deployments)s))
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
      FROM due
     WHERE t.invocation_id = due.invocation_id
    RETURNING t.invocation_id, t.epoch, t.attempt, t.wakeups, due.status AS previous_status,
              due.deployment_id IS DISTINCT FROM %(deployment)s AS pinned_now,
              EXTRACT(EPOCH FROM now() - due.run_at)::float8 AS lag
), pinned AS (
    UPDATE {s}.invocation SET deployment_id = %(deployment)s
     WHERE id IN (SELECT invocation_id FROM claimed WHERE pinned_now)
)
SELECT invocation_id, epoch, attempt, wakeups, previous_status, now() AS db_now, lag FROM claimed
"""

NEXT_DUE = """
-- next_due: seconds until the earliest unleased task this worker may claim is due
SELECT EXTRACT(EPOCH FROM (min(run_at) - now()))::float8 AS seconds
  FROM {s}.task
 WHERE lease_owner IS NULL AND run_at < 'infinity' AND service = ANY(%(services)s)
   AND (deployment_id IS NULL OR deployment_id = ANY(%(deployments)s))
"""

COMPATIBLE_DEPLOYMENTS = """
-- compatible_deployments: the deployments whose pinned invocations a deployment may resume
SELECT compatible_with FROM {s}.deployment WHERE id = %(deployment)s
"""

MARK_COMPATIBLE = """
-- mark_compatible: let a deployment's workers resume invocations pinned to others (or, with an
-- empty list, only their own); returns whether the deployment exists
UPDATE {s}.deployment SET compatible_with = %(compatible)s WHERE id = %(deployment)s RETURNING id
"""

TASK_GAUGES = """
-- task_gauges: invocations not completed per service and status (ready: due and unleased), for metrics
SELECT service, CASE WHEN run_at <= now() THEN 'ready' ELSE status END, count(*)::int
  FROM {s}.task WHERE lease_owner IS NULL GROUP BY 1, 2
UNION ALL
SELECT service, 'running', count(*)::int FROM {s}.task WHERE lease_owner IS NOT NULL GROUP BY 1
"""

LOAD_INVOCATIONS = """
-- load_invocations: what a new attempt needs to know about its invocations
SELECT id, service, handler, key, input, headers, idempotency_key, caller_id, caller_command, status
  FROM {s}.invocation WHERE id = ANY(%(ids)s)
"""

LOAD_JOURNALS = """
-- load_journals: the recorded journals of invocations, in write order
SELECT invocation_id, index, command_index, completes, entry_type, name, params, completed, value,
       failure_code, failure_message, failure_metadata, sleep_wakeup_at
  FROM {s}.journal WHERE invocation_id = ANY(%(ids)s)
 ORDER BY invocation_id, index
"""

LOAD_MAILBOXES = """
-- load_mailboxes: undelivered notifications of freshly claimed invocations
SELECT invocation_id, seq, command_index, value, failure_code, failure_message, failure_metadata
  FROM {s}.notification WHERE invocation_id = ANY(%(ids)s)
 ORDER BY seq
"""

READ_MAILBOX = """
-- read_mailbox: the wake-up counter and the undelivered notifications of one invocation
SELECT t.wakeups, n.seq, n.command_index, n.value, n.failure_code, n.failure_message, n.failure_metadata
  FROM {s}.task t
  LEFT JOIN {s}.notification n ON n.invocation_id = t.invocation_id AND n.seq > %(after)s
 WHERE t.invocation_id = %(id)s
 ORDER BY n.seq
"""

LOAD_STATE = """
-- load_state: every state value of one object key
SELECT name, value FROM {s}.state_entry WHERE service = %(service)s AND key = %(key)s
"""

# -- an attempt's transaction -------------------------------------------------------------------
# Submissions, flushes and their parts are server-side functions: see procedures.py.

APPLY = """
-- apply: commit a group of requests (flushes, submissions) in one transaction; see procedures.py
SELECT {s}.apply(%s::jsonb)::text, now() AS db_now
"""

ENQUEUE = """
-- enqueue: create invocations in the application's own transaction, and hint the workers (a
-- NOTIFY is delivered at commit, and dropped with a rollback)
SELECT {s}.apply(CAST(%(requests)s AS jsonb))::text AS started, pg_notify(%(channel)s, '') AS hinted
"""

FLUSH_IN_TRANSACTION = """
-- flush_in_transaction: an attempt's flush on the application's connection, in the transaction
-- of a database step (ctx.run_in_transaction), committed by it with the step's own writes
SELECT {s}.apply(CAST(%(requests)s AS jsonb))::text AS applied,
       extract(epoch FROM now())::float8 AS db_epoch  -- a number: every driver reads it alike
"""

FENCE = """
-- fence: fail the transaction unless this attempt still holds the invocation's lease
SELECT {s}.fence(%(id)s, %(owner)s, %(epoch)s), now() AS db_now
"""












# -- retention ---------------------------------------------------------------------------------

# The CTEs that forget the completed invocations of a preceding CTE `done`: their journal, and
# for workflow runs their state and promises (the workflow id can then start afresh).
_FORGET_DONE = """journal AS (
    DELETE FROM {s}.journal WHERE invocation_id IN (SELECT id FROM done)
), workflow_state AS (
    DELETE FROM {s}.state_entry s USING done d
     WHERE d.handler_ty = 'workflow' AND s.service = d.service AND s.key = d.key
), promises AS (
    DELETE FROM {s}.promise p USING done d
     WHERE d.handler_ty = 'workflow' AND p.service = d.service AND p.key = d.key
), gone AS (
    DELETE FROM {s}.invocation WHERE id IN (SELECT id FROM done) RETURNING id
)"""

PURGE_EXPIRED = """
-- purge_expired: forget completed invocations past their retention; returns how many
WITH done AS (
    SELECT id, service, key, handler_ty FROM {s}.invocation
     WHERE retain_until < now() AND status = 'completed'
     ORDER BY retain_until
     LIMIT %(limit)s
       FOR UPDATE SKIP LOCKED
), {forget_done}
SELECT count(*) FROM gone
"""

# -- operators -----------------------------------------------------------------------------------

PURGE_INVOCATION = """
-- purge_invocation: forget one completed invocation; returns its status before (NULL if
-- unknown) and whether it was purged
WITH target AS (
    SELECT id, status, service, key, handler_ty FROM {s}.invocation WHERE id = %(id)s FOR UPDATE
), done AS (
    SELECT * FROM target WHERE status = 'completed'
), {forget_done}
SELECT (SELECT status FROM target), (SELECT count(*) FROM gone) > 0
"""

RESUME_INVOCATION = """
-- resume_invocation: make a paused, backing-off or suspended invocation run now; returns its
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
"""

FIRE_TIMERS = """
-- fire_timers: make the pending sleeps and delayed starts of one invocation (or of all) due now,
-- for tests (restate_pg.testing): each sleep's wake-up time becomes now and its completion goes to
-- the mailbox, which wakes a suspended invocation and reaches one waiting in memory; returns each
-- invocation woken with the process running it (NULL if none), then each delayed one made due
WITH sleeps AS (
    SELECT j.invocation_id, j.command_index
      FROM {s}.journal j JOIN {s}.task t ON t.invocation_id = j.invocation_id
     WHERE j.entry_type = 'Sleep' AND j.command_index IS NOT NULL
       AND (%(id)s::text IS NULL OR j.invocation_id = %(id)s::text)
       AND NOT EXISTS (SELECT 1 FROM {s}.journal c
                        WHERE c.invocation_id = j.invocation_id AND c.completes = j.command_index)
       AND NOT EXISTS (SELECT 1 FROM {s}.notification n
                        WHERE n.invocation_id = j.invocation_id AND n.command_index = j.command_index)
     ORDER BY j.invocation_id, j.command_index
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
"""

PAUSE_INVOCATION = """
-- pause_invocation: take an invocation's lease away (fencing its running attempt) and keep it
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
"""

PURGE_JOURNAL = """
-- purge_journal: forget the journal of a completed invocation, keeping its status and result;
-- returns its status (NULL if unknown)
WITH target AS (
    SELECT id, status FROM {s}.invocation WHERE id = %(id)s FOR UPDATE
), gone AS (
    DELETE FROM {s}.journal WHERE invocation_id IN (SELECT id FROM target WHERE status = 'completed')
)
SELECT status FROM target
"""

RESTART_SOURCE = """
-- restart_source: what restarting a completed invocation as a new one needs to check: its
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
"""

RESTART_INVOCATION = """
-- restart_invocation: create a new invocation with the input and headers of a completed one
-- (`submit_invocation`), keeping the old one from being purged meanwhile, unless the journal
-- prefix to replay is gone; returns the new invocation's status (NULL if not created) and how
-- many old entries are up to the prefix end; no row if the old invocation is gone
SELECT CASE WHEN %(prefix)s = 0 OR kept > 0 THEN {s}.submit_invocation(jsonb_build_object(
           'id', %(new_id)s, 'service', service, 'handler', handler, 'key', key,
           'service_ty', service_ty, 'handler_ty', handler_ty, 'input', encode(input, 'base64'),
           'headers', headers, 'invoked_by', 'restart_as_new')) END,
       kept
  FROM (SELECT i.*, (SELECT count(*) FROM {s}.journal j WHERE j.invocation_id = i.id AND j.index <= %(prefix)s) AS kept
          FROM {s}.invocation i WHERE i.id = %(id)s AND i.status = 'completed' FOR SHARE) source
"""

MARK_RESTARTED = """
-- mark_restarted: record which invocation a restarted one re-runs; one that replays a journal
-- prefix is pinned to the deployment that wrote it
WITH marked AS (
    UPDATE {s}.invocation r
       SET restarted_from = %(id)s,
           deployment_id = CASE WHEN %(prefix)s > 0 THEN (SELECT deployment_id FROM {s}.invocation WHERE id = %(id)s) END
     WHERE r.id = %(new_id)s
    RETURNING r.id, r.deployment_id
)
UPDATE {s}.task t SET deployment_id = marked.deployment_id FROM marked WHERE t.invocation_id = marked.id
"""

COPY_JOURNAL_PREFIX = """
-- copy_journal_prefix: give a restarted invocation the journal of the old one up to a position,
-- so that its replay returns the recorded results (a recorded cancellation is not carried over)
INSERT INTO {s}.journal (invocation_id, index, command_index, completes, entry_type, name, params, completed,
                         value, failure_code, failure_message, failure_metadata, sleep_wakeup_at)
SELECT %(new_id)s, index, command_index, completes, entry_type, name, params, completed,
       value, failure_code, failure_message, failure_metadata, sleep_wakeup_at
  FROM {s}.journal
 WHERE invocation_id = %(id)s AND index <= %(prefix)s AND entry_type <> 'Cancel'
"""

# -- the operator's command line (run read-only over the introspection views) --------------------

OPERATOR_LIST_INVOCATIONS = """
-- operator_list_invocations: invocations matching the given filters (each may be NULL), newest first
SELECT id, target, status, retry_count AS attempts, created_at, modified_at,
       COALESCE(completion_failure, last_failure) AS failure, pinned_deployment_id AS deployment
  FROM {s}.sys_invocation
 WHERE (%(service)s::text IS NULL OR target_service_name = %(service)s)
   AND (%(handler)s::text IS NULL OR target_handler_name = %(handler)s)
   AND (%(key)s::text IS NULL OR target_service_key = %(key)s)
   AND (%(statuses)s::text[] IS NULL OR status = ANY(%(statuses)s))
   AND (%(older_than_s)s::float8 IS NULL OR created_at < now() - %(older_than_s)s * interval '1 second')
   AND (%(newer_than_s)s::float8 IS NULL OR created_at >= now() - %(newer_than_s)s * interval '1 second')
 ORDER BY created_at DESC
 LIMIT %(limit)s
"""

OPERATOR_DESCRIBE_INVOCATION = """
-- operator_describe_invocation: everything sys_invocation knows of one invocation
SELECT * FROM {s}.sys_invocation WHERE id = %(id)s
"""

OPERATOR_JOURNAL = """
-- operator_journal: one invocation's journal as a timeline
SELECT index, entry_type, name, completed, invoked_id, invoked_target, sleep_wakeup_at, promise_name,
       entry_lite_json, appended_at
  FROM {s}.sys_journal WHERE id = %(id)s ORDER BY index
"""

OPERATOR_TARGET_INVOCATIONS = """
-- operator_target_invocations: ids of the completed (or else the unfinished) invocations of a
-- service, a handler, or an object key's handler
SELECT id FROM {s}.sys_invocation
 WHERE target_service_name = %(service)s
   AND (%(handler)s::text IS NULL OR target_handler_name = %(handler)s)
   AND (%(key)s::text IS NULL OR target_service_key = %(key)s)
   AND (status = 'completed') = %(completed)s
 ORDER BY created_at
"""

OPERATOR_SERVICES = """
-- operator_services: the registered services, their handlers and latest deployment
SELECT name, ty AS type, revision, public, deployment_id AS deployment,
       (SELECT string_agg(h->>'name', ', ' ORDER BY h->>'name') FROM jsonb_array_elements(handlers) h) AS handlers
  FROM {s}.service ORDER BY name
"""

OPERATOR_DEPLOYMENTS = """
-- operator_deployments: the deployments, oldest first, with their live workers and in-flight
-- invocations (to drain before switching one off)
SELECT d.id, d.created_at,
       (SELECT count(*) FROM {s}.worker w WHERE w.deployment_id = d.id) AS workers,
       (SELECT count(*) FROM {s}.task t WHERE t.deployment_id = d.id) AS in_flight,
       array_to_string(d.compatible_with, ', ') AS resumes_also,
       (SELECT string_agg(e->>'name', ', ') FROM jsonb_array_elements(d.services) e) AS services
  FROM {s}.deployment d ORDER BY d.created_at
"""

OPERATOR_STATE = """
-- operator_state: the state entries of one object key, raw and as text
SELECT key, value_utf8, value FROM {s}.state
 WHERE service_name = %(service)s AND service_key = %(key)s AND (%(name)s::text IS NULL OR key = %(name)s)
 ORDER BY key
"""

# -- workers -----------------------------------------------------------------------------------

REGISTER_WORKER = """
-- register_worker: announce a worker process, its services and the deployment it runs
INSERT INTO {s}.worker (id, hostname, pid, services, deployment_id)
VALUES (%(id)s, %(hostname)s, %(pid)s, %(services)s, %(deployment)s)
RETURNING now() AS db_now
"""

REGISTER_DEPLOYMENT = """
-- register_deployment: record an application version and the services it hosts
INSERT INTO {s}.deployment (id, services) VALUES (%(deployment)s, %(services)s)
ON CONFLICT (id) DO UPDATE SET services = EXCLUDED.services, last_seen_at = now()
"""

REGISTER_SERVICES = """
-- register_services: make a deployment the latest of its services unless a newer one is; a
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
"""

# -- services and deployments ------------------------------------------------------------------

LIST_SERVICES = """
-- list_services: the registered services (all, or one): what their latest deployment says of
-- them, and the settings operators changed
SELECT svc.name, svc.ty, svc.deployment_id, svc.handlers, svc.public, svc.revision,
       (SELECT doc FROM jsonb_array_elements(d.services) AS doc WHERE doc->>'name' = svc.name) AS registered,
       EXTRACT(EPOCH FROM svc.idempotency_retention)::float8 AS idempotency_retention,
       EXTRACT(EPOCH FROM svc.workflow_retention)::float8 AS workflow_retention,
       EXTRACT(EPOCH FROM svc.journal_retention)::float8 AS journal_retention,
       EXTRACT(EPOCH FROM svc.inactivity_timeout)::float8 AS inactivity_timeout,
       EXTRACT(EPOCH FROM svc.abort_timeout)::float8 AS abort_timeout
  FROM {s}.service svc LEFT JOIN {s}.deployment d ON d.id = svc.deployment_id
 WHERE %(name)s::text IS NULL OR svc.name = %(name)s
 ORDER BY svc.name
"""

MODIFY_SERVICE = """
-- modify_service: change a registered service's settings (NULL leaves one as it is); returns
-- whether the service exists
UPDATE {s}.service
   SET public = COALESCE(%(public)s, public),
       idempotency_retention = COALESCE(%(idempotency_retention)s * interval '1 second', idempotency_retention),
       workflow_retention = COALESCE(%(workflow_retention)s * interval '1 second', workflow_retention),
       journal_retention = COALESCE(%(journal_retention)s * interval '1 second', journal_retention),
       inactivity_timeout = COALESCE(%(inactivity_timeout)s * interval '1 second', inactivity_timeout),
       abort_timeout = COALESCE(%(abort_timeout)s * interval '1 second', abort_timeout),
       modified_at = now()
 WHERE name = %(name)s
RETURNING name
"""

LIST_DEPLOYMENTS = """
-- list_deployments: application versions, with their live workers and in-flight invocations
SELECT d.id, d.services, d.compatible_with, d.created_at, d.last_seen_at,
       (SELECT count(*) FROM {s}.worker w WHERE w.deployment_id = d.id) AS workers,
       (SELECT count(*) FROM {s}.task t WHERE t.deployment_id = d.id) AS in_flight
  FROM {s}.deployment d
 WHERE %(id)s::text IS NULL OR d.id = %(id)s
 ORDER BY d.created_at
"""

CLEAR_STATE_OF_KEY = """
-- clear_state_of_key: remove an object key's state (one entry, or all of them when name is NULL)
DELETE FROM {s}.state_entry
 WHERE service = %(service)s AND key = %(key)s AND (%(name)s::text IS NULL OR name = %(name)s)
"""

SET_STATE_ENTRY = """
-- set_state_entry: write one state entry of an object key
INSERT INTO {s}.state_entry (service, key, name, value) VALUES (%(service)s, %(key)s, %(name)s, %(value)s)
ON CONFLICT (service, key, name) DO UPDATE SET value = EXCLUDED.value
"""

HEARTBEAT = """
-- heartbeat: keep a worker's leases alive, and give back those it holds without an attempt for
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
"""

REAP_WORKERS = """
-- reap_workers: forget workers whose heartbeat expired, and make claimable every task leased to
-- a worker that is gone; rows locked by a transaction under way are skipped for the next reap,
-- so that no worker ever waits here for another worker's locks (a frozen one's, say)
WITH dead AS (
    DELETE FROM {s}.worker WHERE id IN (
        SELECT id FROM {s}.worker
         WHERE heartbeat_at < now() - %(lease_ms)s::bigint * interval '1 millisecond'
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
"""

UNREGISTER_WORKER = """
-- unregister_worker: a worker leaving cleanly hands its unfinished tasks back at once
WITH gone AS (DELETE FROM {s}.worker WHERE id = %(id)s RETURNING id)
UPDATE {s}.task SET lease_owner = NULL, status = 'ready', run_at = now()
  FROM gone WHERE task.lease_owner = gone.id
"""

SCOPE_OPERATOR_QUERY = """
-- scope_operator_query: in an operator's read-only transaction, find restate-pg's views first
-- (the application's tables still resolve) and cancel the query after a timeout
SELECT set_config('search_path', '{s}, ' || current_setting('search_path'), true),
       set_config('statement_timeout', %(timeout_ms)s, true)
"""

# -- inspecting for tests (restate_pg.testing) ------------------------------------------------

TEST_JOURNAL = """
-- test_journal: one invocation's journal, as sys_journal shows it, in order
SELECT * FROM {s}.sys_journal WHERE id = %(id)s ORDER BY index
"""

# -- test databases (restate_pg.testing); {name} and {tables} are identifiers composed by psycopg --

CREATE_DATABASE = """
-- create_database: a fresh database for one test session
CREATE DATABASE {name}
"""

END_DATABASE_SESSIONS = """
-- end_database_sessions: end the connections a test or a worker left on a database about to go
SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %(name)s AND pid <> pg_backend_pid()
"""

DROP_DATABASE = """
-- drop_database: remove a test session's database
DROP DATABASE IF EXISTS {name}
"""

SCHEMA_TABLES = """
-- schema_tables: the tables of restate-pg's schema, but alembic's version table
SELECT tablename FROM pg_tables WHERE schemaname = %(schema)s AND tablename <> %(version_table)s
"""

EMPTY_TABLES = """
-- empty_tables: remove every row of restate-pg's tables between two tests
TRUNCATE {tables} RESTART IDENTITY CASCADE
"""

# -- cron schedules ------------------------------------------------------------------------------

_CRON_INSERT = """INSERT INTO {s}.cron_job (name, service, handler, key, schedule, timezone, input, headers,
                         catch_up, source, enabled, next_at)
VALUES (%(name)s, %(service)s, %(handler)s, %(key)s, %(schedule)s, %(timezone)s, %(input)s,
        %(headers)s, %(catch_up)s, %(source)s, %(enabled)s, %(next_at)s)"""

CREATE_CRON = """
-- create_cron: register a schedule made at run time; no row back when the name is taken
""" + _CRON_INSERT + """
ON CONFLICT (name) DO NOTHING
RETURNING name
"""

SYNC_CODE_CRON = """
-- sync_code_cron: upsert a code-declared schedule (next tick kept unless its timing changed); no row if run-time made
""" + _CRON_INSERT + """
ON CONFLICT (name) DO UPDATE
   SET service = EXCLUDED.service, handler = EXCLUDED.handler, key = EXCLUDED.key,
       input = EXCLUDED.input, headers = EXCLUDED.headers, catch_up = EXCLUDED.catch_up,
       schedule = EXCLUDED.schedule, timezone = EXCLUDED.timezone,
       next_at = CASE WHEN (cron_job.schedule, cron_job.timezone) = (EXCLUDED.schedule, EXCLUDED.timezone)
                      THEN cron_job.next_at ELSE EXCLUDED.next_at END,
       modified_at = CASE WHEN (cron_job.service, cron_job.handler, cron_job.key, cron_job.input, cron_job.headers,
                                cron_job.catch_up, cron_job.schedule, cron_job.timezone)
                               IS NOT DISTINCT FROM
                               (EXCLUDED.service, EXCLUDED.handler, EXCLUDED.key, EXCLUDED.input, EXCLUDED.headers,
                                EXCLUDED.catch_up, EXCLUDED.schedule, EXCLUDED.timezone)
                          THEN cron_job.modified_at ELSE now() END
 WHERE cron_job.source = 'code'
RETURNING name
"""

DELETE_STALE_CODE_CRONS = """
-- delete_stale_code_crons: forget the code-declared schedules of these services that the code no longer declares
DELETE FROM {s}.cron_job
 WHERE source = 'code' AND service = ANY(%(services)s) AND NOT name = ANY(%(names)s)
RETURNING name
"""

LIST_CRONS = """
-- list_crons: schedules (all, or the one named), by name
SELECT name, service, handler, key, schedule, timezone, input, headers, catch_up, source, enabled,
       next_at, last_tick_at, last_invocation_id, created_at, modified_at
  FROM {s}.cron_job
 WHERE %(name)s::text IS NULL OR name = %(name)s
 ORDER BY name
"""

SET_CRON_ENABLED = """
-- set_cron_enabled: pause or resume a schedule; resuming starts again from the given next tick
UPDATE {s}.cron_job
   SET next_at = CASE WHEN %(enabled)s AND NOT enabled THEN %(next_at)s ELSE next_at END,
       enabled = %(enabled)s, modified_at = now()
 WHERE name = %(name)s
RETURNING name
"""

DELETE_CRON = """
-- delete_cron: forget a schedule (the invocations it started are left alone)
DELETE FROM {s}.cron_job WHERE name = %(name)s RETURNING name
"""

CLAIM_DUE_CRONS = """
-- claim_due_crons: lock due schedules of the given handlers ('Service/handler') for this
-- transaction (other workers skip them; a worker without the handler never takes its ticks)
SELECT name, service, handler, key, schedule, timezone, input, headers, catch_up, next_at, now() AS db_now
  FROM {s}.cron_job
 WHERE enabled AND next_at <= now() AND service || '/' || handler = ANY(%(targets)s)
 ORDER BY next_at
 LIMIT %(limit)s
   FOR UPDATE SKIP LOCKED
"""

SUBMIT_INVOCATION = """
-- submit_invocation: create one invocation (see procedures.py); NULL when its id already existed
SELECT {s}.submit_invocation(%(doc)s::jsonb)
"""

ADVANCE_CRON = """
-- advance_cron: record a schedule's fired tick (if any) and its next one
UPDATE {s}.cron_job
   SET next_at = %(next_at)s,
       last_tick_at = COALESCE(%(tick)s, last_tick_at),
       last_invocation_id = COALESCE(%(invocation_id)s, last_invocation_id)
 WHERE name = %(name)s
"""

NEXT_CRON_DUE = """
-- next_cron_due: seconds until the earliest enabled schedule of the given handlers is due
SELECT EXTRACT(EPOCH FROM (min(next_at) - now()))::float8
  FROM {s}.cron_job
 WHERE enabled AND service || '/' || handler = ANY(%(targets)s)
"""

NOTIFY = """
-- notify: a wake-up hint, sent outside data transactions
SELECT pg_notify(%(channel)s, %(payload)s)
"""


@dataclass(frozen=True)
class Queries:
    """The statements above with the schema filled in."""

    schema: str

    def __getattr__(self, name: str) -> str:
        template = globals().get(name)
        if not isinstance(template, str) or not name.isupper():
            raise AttributeError(name)
        text = (
            template.replace("{take_key_or_queue}", _TAKE_KEY_OR_QUEUE)
            .replace("{forget_done}", _FORGET_DONE)
            .replace("{s}", quote_schema(self.schema))
        )
        object.__setattr__(self, name, text)  # cache on the instance
        return text
