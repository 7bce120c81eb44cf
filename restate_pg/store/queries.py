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

CLAIM_TASKS = """
-- claim_tasks: lease due, unleased tasks of the given services to a worker
WITH due AS (
    SELECT invocation_id, status, run_at FROM {s}.task
     WHERE lease_owner IS NULL AND run_at <= now() AND service = ANY(%(services)s)
     ORDER BY run_at
     LIMIT %(limit)s
       FOR UPDATE SKIP LOCKED
)
UPDATE {s}.task t
   SET lease_owner = %(owner)s, epoch = t.epoch + 1, attempt = t.attempt + 1,
       status = 'running', last_start_at = now()
  FROM due
 WHERE t.invocation_id = due.invocation_id
RETURNING t.invocation_id, t.epoch, t.attempt, t.wakeups, due.status AS previous_status, now() AS db_now,
          EXTRACT(EPOCH FROM now() - due.run_at)::float8 AS lag
"""

NEXT_DUE = """
-- next_due: seconds until the earliest unleased task of the given services is due
SELECT EXTRACT(EPOCH FROM (min(run_at) - now()))::float8 AS seconds
  FROM {s}.task
 WHERE lease_owner IS NULL AND run_at < 'infinity' AND service = ANY(%(services)s)
"""

TASK_GAUGES = """
-- task_gauges: invocations not completed per service and status (ready: due and unleased), for metrics
SELECT service, CASE WHEN run_at <= now() THEN 'ready' ELSE status END, count(*)::int
  FROM {s}.task WHERE lease_owner IS NULL GROUP BY 1, 2
UNION ALL
SELECT service, 'running', count(*)::int FROM {s}.task WHERE lease_owner IS NOT NULL GROUP BY 1
"""

START_SCHEDULED = """
-- start_scheduled: a due delayed invocation takes its object key, or queues behind it
WITH busy AS (
    SELECT %(exclusive)s::boolean AND EXISTS (
        SELECT 1 FROM {s}.object_lock WHERE service = %(service)s AND key = %(key)s) AS inboxed
), inv AS (
    UPDATE {s}.invocation SET status = CASE WHEN busy.inboxed THEN 'inboxed' ELSE 'invoked' END,
                              modified_at = now()
      FROM busy WHERE id = %(id)s
    RETURNING id, status
), {take_key_or_queue}
), untasked AS (
    DELETE FROM {s}.task WHERE invocation_id IN (SELECT id FROM inv WHERE status = 'inboxed')
)
SELECT status FROM inv
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
SELECT name, value FROM {s}.state WHERE service = %(service)s AND key = %(key)s
"""

# -- an attempt's transaction -------------------------------------------------------------------
# Submissions, flushes and their parts are server-side functions: see procedures.py.

APPLY = """
-- apply: commit a group of requests (flushes, submissions) in one transaction; see procedures.py
SELECT {s}.apply(%s::jsonb)::text, now() AS db_now
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
    DELETE FROM {s}.state s USING done d
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

# -- workers -----------------------------------------------------------------------------------

REGISTER_WORKER = """
-- register_worker: announce a worker process and its services
INSERT INTO {s}.worker (id, hostname, pid, services) VALUES (%(id)s, %(hostname)s, %(pid)s, %(services)s)
RETURNING now() AS db_now
"""

HEARTBEAT = """
-- heartbeat: keep a worker's leases alive; no row back means it was declared dead
UPDATE {s}.worker SET heartbeat_at = now() WHERE id = %(id)s RETURNING now() AS db_now
"""

REAP_WORKERS = """
-- reap_workers: forget workers whose heartbeat expired and make their tasks claimable
WITH dead AS (
    DELETE FROM {s}.worker
     WHERE heartbeat_at < now() - %(lease_ms)s::bigint * interval '1 millisecond'
    RETURNING id
)
UPDATE {s}.task SET lease_owner = NULL, status = 'ready', run_at = now()
  FROM dead WHERE task.lease_owner = dead.id
RETURNING task.invocation_id
"""

UNREGISTER_WORKER = """
-- unregister_worker: a worker leaving cleanly hands its unfinished tasks back at once
WITH gone AS (DELETE FROM {s}.worker WHERE id = %(id)s RETURNING id)
UPDATE {s}.task SET lease_owner = NULL, status = 'ready', run_at = now()
  FROM gone WHERE task.lease_owner = gone.id
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
