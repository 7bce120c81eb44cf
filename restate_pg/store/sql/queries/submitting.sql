-- Creating invocations and reading their outcome.
-- Each statement: `-- name: <name>`, then its purpose; see restate_pg/store/queries.py.

-- name: lock_object_key
-- serialise every change of who holds an object key (transaction-scoped)
SELECT {s}.lock_object_key(%(service)s, %(key)s)

-- name: get_invocation
-- the status and result of one invocation
SELECT id, service, handler, key, status, result, output, failure_code, failure_message,
       failure_metadata, created_at, completed_at, retain_until, now() AS db_now
  FROM {s}.invocation WHERE id = %(id)s

-- name: wait_for_invocation
-- register a process as waiting for a result, and read the current status
UPDATE {s}.invocation
   SET waiter = CASE WHEN waiter IS NULL OR waiter = %(waiter)s THEN %(waiter)s ELSE '*' END
 WHERE id = %(id)s
RETURNING status, result, output, failure_code, failure_message, failure_metadata

-- name: submit_invocation
-- create one invocation (functions/submit_invocation.sql); NULL when its id already existed
SELECT {s}.submit_invocation(%(doc)s::jsonb)
