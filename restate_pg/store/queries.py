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
SELECT pg_advisory_xact_lock(%(namespace)s, hashtext(%(service)s || '/' || %(key)s))
"""

SUBMIT_INVOCATION = """
-- submit_invocation: create an invocation and its task, or queue it behind its object key
WITH busy AS (
    SELECT %(exclusive)s::boolean AND %(delay_ms)s::bigint IS NULL AND EXISTS (
        SELECT 1 FROM {s}.object_lock WHERE service = %(service)s AND key = %(key)s
    ) AS inboxed
), inv AS (
    INSERT INTO {s}.invocation (
        id, service, handler, key, service_ty, handler_ty, status, input, headers,
        idempotency_key, invoked_by, caller_id, caller_command, waiter, scheduled_start_at)
    SELECT %(id)s, %(service)s, %(handler)s, %(key)s, %(service_ty)s, %(handler_ty)s,
           CASE WHEN %(delay_ms)s::bigint IS NOT NULL THEN 'scheduled'
                WHEN busy.inboxed THEN 'inboxed' ELSE 'invoked' END,
           %(input)s, %(headers)s, %(idempotency_key)s, %(invoked_by)s,
           %(caller_id)s, %(caller_command)s, %(waiter)s,
           now() + %(delay_ms)s::bigint * interval '1 millisecond'
      FROM busy
    ON CONFLICT (id) DO NOTHING
    RETURNING id, status, scheduled_start_at
), {take_key_or_queue}
), tasked AS (
    INSERT INTO {s}.task (invocation_id, service, status, run_at, lease_owner, epoch, attempt, last_start_at)
    SELECT id, %(service)s,
           CASE WHEN status = 'scheduled' THEN 'scheduled'
                WHEN %(owner)s::text IS NULL THEN 'ready' ELSE 'running' END,
           COALESCE(scheduled_start_at, now()),
           CASE WHEN status = 'invoked' THEN %(owner)s::text END,
           CASE WHEN status = 'invoked' AND %(owner)s::text IS NOT NULL THEN 1 ELSE 0 END,
           CASE WHEN status = 'invoked' AND %(owner)s::text IS NOT NULL THEN 1 ELSE 0 END,
           CASE WHEN status = 'invoked' AND %(owner)s::text IS NOT NULL THEN now() END
      FROM inv WHERE status <> 'inboxed'
)
SELECT id, status, now() AS db_now FROM inv
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
    SELECT invocation_id, status FROM {s}.task
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
RETURNING t.invocation_id, t.epoch, t.attempt, t.wakeups, due.status AS previous_status, now() AS db_now
"""

NEXT_DUE = """
-- next_due: seconds until the earliest unleased task of the given services is due
SELECT EXTRACT(EPOCH FROM (min(run_at) - now()))::float8 AS seconds
  FROM {s}.task
 WHERE lease_owner IS NULL AND run_at < 'infinity' AND service = ANY(%(services)s)
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

# -- an attempt's transaction (flush) -----------------------------------------------------------

FENCE = """
-- fence: fail the transaction unless this attempt still holds the invocation's lease
SELECT {s}.fence(%(id)s, %(owner)s, %(epoch)s), now() AS db_now
"""

APPEND_JOURNAL = """
-- append_journal: record one journal entry
INSERT INTO {s}.journal (invocation_id, index, command_index, completes, entry_type, name, params,
                         completed, value, failure_code, failure_message, failure_metadata, sleep_wakeup_at)
VALUES (%(id)s, %(index)s, %(command_index)s, %(completes)s, %(entry_type)s, %(name)s, %(params)s,
        %(completed)s, %(value)s, %(failure_code)s, %(failure_message)s, %(failure_metadata)s,
        %(sleep_wakeup_at)s)
"""

SET_STATE = """
-- set_state: write one state value of an object key
INSERT INTO {s}.state (service, key, name, value) VALUES (%(service)s, %(key)s, %(name)s, %(value)s)
ON CONFLICT (service, key, name) DO UPDATE SET value = EXCLUDED.value
"""

CLEAR_STATE = """
-- clear_state: delete one state value of an object key
DELETE FROM {s}.state WHERE service = %(service)s AND key = %(key)s AND name = %(name)s
"""

CLEAR_ALL_STATE = """
-- clear_all_state: delete every state value of an object key
DELETE FROM {s}.state WHERE service = %(service)s AND key = %(key)s
"""

DELETE_NOTIFICATIONS = """
-- delete_notifications: drop mailbox rows once their journal entries are written
DELETE FROM {s}.notification WHERE seq = ANY(%(seqs)s)
"""

DELIVER_NOTIFICATION = """
-- deliver_notification: put a result in an invocation's mailbox and wake it if suspended
WITH mail AS (
    INSERT INTO {s}.notification (invocation_id, command_index, value, failure_code, failure_message,
                                  failure_metadata)
    VALUES (%(target)s, %(command_index)s, %(value)s, %(failure_code)s, %(failure_message)s,
            %(failure_metadata)s)
)
UPDATE {s}.task
   SET wakeups = wakeups + 1,
       status = CASE WHEN status = 'suspended' THEN 'ready' ELSE status END,
       run_at = CASE WHEN status = 'suspended' THEN now() ELSE run_at END
 WHERE invocation_id = %(target)s
RETURNING lease_owner
"""

SUSPEND_TASK = """
-- suspend_task: give up the lease until a timer is due or a notification arrives
UPDATE {s}.task
   SET lease_owner = NULL, status = 'suspended',
       run_at = COALESCE(%(wake_at)s::timestamptz, 'infinity')
 WHERE invocation_id = %(id)s AND wakeups = %(wakeups)s
RETURNING invocation_id
"""

RETRY_TASK = """
-- retry_task: give up the lease after a retryable failure, to back off or to pause
UPDATE {s}.task
   SET lease_owner = NULL, status = %(status)s,
       run_at = CASE WHEN %(status)s = 'paused' THEN 'infinity'
                     ELSE now() + %(delay_ms)s::bigint * interval '1 millisecond' END,
       last_failure = %(failure)s, last_failure_code = %(failure_code)s
 WHERE invocation_id = %(id)s
"""

COMPLETE_INVOCATION = """
-- complete_invocation: store the result of an invocation; returns the process waiting for it
UPDATE {s}.invocation
   SET status = 'completed', completed_at = now(), modified_at = now(),
       result = %(result)s, output = %(output)s, failure_code = %(failure_code)s,
       failure_message = %(failure_message)s, failure_metadata = %(failure_metadata)s,
       retain_until = now() + %(retention_ms)s::bigint * interval '1 millisecond'
 WHERE id = %(id)s
RETURNING waiter
"""

DELETE_TASK = """
-- delete_task: a completed invocation leaves the live-work table
DELETE FROM {s}.task WHERE invocation_id = %(id)s
"""

RELEASE_OBJECT_KEY = """
-- release_object_key: hand an object key to the head of its inbox, or free it
WITH head AS (
    DELETE FROM {s}.inbox
     WHERE seq = (SELECT seq FROM {s}.inbox WHERE service = %(service)s AND key = %(key)s
                   ORDER BY seq LIMIT 1)
    RETURNING invocation_id
), handoff AS (
    UPDATE {s}.object_lock SET invocation_id = head.invocation_id, acquired_at = now()
      FROM head WHERE service = %(service)s AND key = %(key)s
), freed AS (
    DELETE FROM {s}.object_lock
     WHERE service = %(service)s AND key = %(key)s AND invocation_id = %(holder)s
       AND NOT EXISTS (SELECT 1 FROM head)
), started AS (
    UPDATE {s}.invocation SET status = 'invoked', modified_at = now()
      FROM head WHERE id = head.invocation_id
), tasked AS (
    INSERT INTO {s}.task (invocation_id, service, status, run_at, lease_owner, epoch, attempt, last_start_at)
    SELECT invocation_id, %(service)s,
           CASE WHEN %(owner)s::text IS NULL THEN 'ready' ELSE 'running' END, now(), %(owner)s::text,
           CASE WHEN %(owner)s::text IS NULL THEN 0 ELSE 1 END,
           CASE WHEN %(owner)s::text IS NULL THEN 0 ELSE 1 END,
           CASE WHEN %(owner)s::text IS NULL THEN NULL ELSE now() END
      FROM head
)
SELECT invocation_id FROM head
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
        text = template.replace("{take_key_or_queue}", _TAKE_KEY_OR_QUEUE).replace("{s}", quote_schema(self.schema))
        object.__setattr__(self, name, text)  # cache on the instance
        return text
