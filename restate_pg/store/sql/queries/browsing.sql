-- What the operator UI (restate_pg/ui) reads: invocations page by page, one invocation with its
-- journal, object keys, and the overview's numbers. Every statement reads; none locks.
-- Each statement: `-- name: <name>`, then its purpose; see restate_pg/store/queries.py.
-- The UI sends them as text with their values (store/browsing.py), so that each plan is made for
-- the filters at hand: an unused filter (NULL) drops out, a service filter meets its index.

-- name: browse_invocations
-- one page of invocations, newest first, after a keyset cursor (created_at, id), of the task
-- statuses `live` and the stored statuses `stored` (inboxed, completed). Two branches, each with
-- the same filters and its own limit, merged: live ones from task (few: read whole, MATERIALIZED,
-- each invocation found by its primary key, so the planner never walks the retained invocations
-- looking for them), inboxed and completed ones walking invocation_created or
-- invocation_service_created backwards. (One filter over a UNION ALL of both would read simpler,
-- but PostgreSQL then sorts every retained invocation: measured.) A page costs its length.
WITH live AS MATERIALIZED (
    SELECT t.invocation_id, t.status, t.attempt, t.last_failure, t.deployment_id
      FROM {s}.task t
     WHERE t.status = ANY(%(live)s::text[])
)
SELECT * FROM (
    SELECT i.id, i.service, i.key, i.handler, t.status, t.attempt AS attempts, i.created_at, i.modified_at,
           i.completed_at, i.result, t.last_failure AS failure, t.deployment_id AS deployment
      FROM live t
      -- LIMIT 1: one primary-key lookup per live invocation, never a join over all of them
      CROSS JOIN LATERAL (SELECT * FROM {s}.invocation WHERE id = t.invocation_id LIMIT 1) i
     WHERE true
       AND (%(service)s::text IS NULL OR i.service = %(service)s)
       AND (%(handler)s::text IS NULL OR i.handler = %(handler)s)
       AND (%(key)s::text IS NULL OR i.key = %(key)s)
       AND (%(deployment)s::text IS NULL OR t.deployment_id = %(deployment)s)
       AND (%(result)s::text IS NULL OR (%(result)s = 'none' AND i.result IS NULL) OR i.result = %(result)s)
       AND (%(since)s::timestamptz IS NULL OR i.created_at >= %(since)s)
       AND (%(until)s::timestamptz IS NULL OR i.created_at < %(until)s)
       AND (%(id)s::text IS NULL OR i.id = %(id)s)
       AND (%(id)s::text IS NULL OR i.id = %(id)s)
       AND (%(text)s::text IS NULL OR starts_with(i.id, %(text)s) OR i.idempotency_key = %(text)s
            OR i.caller_id = %(text)s OR i.restarted_from = %(text)s)
       AND (%(cursor_at)s::timestamptz IS NULL OR (i.created_at, i.id) < (%(cursor_at)s, %(cursor_id)s))
     ORDER BY i.created_at DESC, i.id DESC
     LIMIT %(limit)s
) live_page
UNION ALL
SELECT * FROM (
    SELECT i.id, i.service, i.key, i.handler, CASE i.status WHEN 'inboxed' THEN 'pending' ELSE 'completed' END,
           i.attempts, i.created_at, i.modified_at, i.completed_at, i.result,
           '[' || i.failure_code || '] ' || i.failure_message, i.deployment_id
      FROM {s}.invocation i
     WHERE cardinality(%(stored)s::text[]) > 0 AND i.status = ANY(%(stored)s::text[])
       AND (%(service)s::text IS NULL OR i.service = %(service)s)
       AND (%(handler)s::text IS NULL OR i.handler = %(handler)s)
       AND (%(key)s::text IS NULL OR i.key = %(key)s)
       AND (%(deployment)s::text IS NULL OR i.deployment_id = %(deployment)s)
       AND (%(result)s::text IS NULL OR (%(result)s = 'none' AND i.result IS NULL) OR i.result = %(result)s)
       AND (%(since)s::timestamptz IS NULL OR i.created_at >= %(since)s)
       AND (%(until)s::timestamptz IS NULL OR i.created_at < %(until)s)
       AND (%(text)s::text IS NULL OR starts_with(i.id, %(text)s) OR i.idempotency_key = %(text)s
            OR i.caller_id = %(text)s OR i.restarted_from = %(text)s)
       AND (%(cursor_at)s::timestamptz IS NULL OR (i.created_at, i.id) < (%(cursor_at)s, %(cursor_id)s))
     ORDER BY i.created_at DESC, i.id DESC
     LIMIT %(limit)s
) retained_page
ORDER BY created_at DESC, id DESC
LIMIT %(limit)s

-- name: browse_status_counts
-- how many invocations match the filters, per status: live ones exactly (task is small), inboxed
-- and completed ones counted up to a cap, so that the count stays cheap with a million retained
SELECT t.status, count(*)::bigint AS invocations
  FROM {s}.task t JOIN {s}.invocation i ON i.id = t.invocation_id
 WHERE (%(service)s::text IS NULL OR i.service = %(service)s)
   AND (%(handler)s::text IS NULL OR i.handler = %(handler)s)
   AND (%(key)s::text IS NULL OR i.key = %(key)s)
   AND (%(deployment)s::text IS NULL OR t.deployment_id = %(deployment)s)
 GROUP BY t.status
UNION ALL
SELECT CASE stored WHEN 'inboxed' THEN 'pending' ELSE stored END,
       (SELECT count(*) FROM (SELECT 1 FROM {s}.invocation i
                               WHERE i.status = stored
                                 AND (%(service)s::text IS NULL OR i.service = %(service)s)
                                 AND (%(handler)s::text IS NULL OR i.handler = %(handler)s)
                                 AND (%(key)s::text IS NULL OR i.key = %(key)s)
                                 AND (%(deployment)s::text IS NULL OR i.deployment_id = %(deployment)s)
                               LIMIT %(cap)s) capped)::bigint
  FROM unnest(ARRAY['inboxed', 'completed']) AS stored

-- name: browse_invocation
-- one invocation for its page: target, status, attempts, caller, timings, input, headers, result
SELECT i.id, i.service, i.key, i.handler, i.service_ty, i.handler_ty,
       COALESCE(t.status, CASE i.status WHEN 'inboxed' THEN 'pending' ELSE i.status END) AS status,
       COALESCE(t.attempt, i.attempts) AS attempts, i.input, i.headers, i.idempotency_key, i.invoked_by,
       i.caller_id, c.service || '/' || COALESCE(c.key || '/', '') || c.handler AS caller_target,
       i.restarted_from, COALESCE(t.deployment_id, i.deployment_id) AS deployment, i.created_at,
       i.modified_at, i.scheduled_start_at, i.completed_at, i.retain_until, t.last_start_at, t.run_at,
       t.lease_owner, t.last_failure, t.last_failure_code, i.result, i.output, i.failure_code,
       i.failure_message
  FROM {s}.invocation i
  LEFT JOIN {s}.task t ON t.invocation_id = i.id
  LEFT JOIN {s}.invocation c ON c.id = i.caller_id
 WHERE i.id = %(id)s

-- name: browse_journal
-- an invocation's journal in stored order: commands and the notifications that complete them
-- (an SDK endpoint's protocol message, journal.message, is not read)
SELECT index, command_index, completes, entry_type, name, params, completed, value, failure_code,
       failure_message, sleep_wakeup_at, appended_at
  FROM {s}.journal
 WHERE invocation_id = %(id)s
 ORDER BY index
 LIMIT %(limit)s

-- name: browse_callees
-- the status of the invocations a journal called or sent to (by id, from its Call commands)
SELECT i.id, COALESCE(t.status, CASE i.status WHEN 'inboxed' THEN 'pending' ELSE i.status END) AS status
  FROM {s}.invocation i LEFT JOIN {s}.task t ON t.invocation_id = i.id
 WHERE i.id = ANY(%(ids)s)

-- name: browse_state_keys
-- a page of the object keys (or workflow ids) of a service that hold state, in key order
SELECT key, count(*)::int AS entries, sum(octet_length(value))::bigint AS bytes
  FROM {s}.state_entry
 WHERE service = %(service)s
   AND (%(after)s::text IS NULL OR key > %(after)s)
   AND (%(prefix)s::text IS NULL OR starts_with(key, %(prefix)s))
 GROUP BY key
 ORDER BY key
 LIMIT %(limit)s

-- name: browse_backlog
-- the overview's live invocations per service and status, with the oldest ready one's wait
SELECT service, status, count(*)::bigint AS invocations,
       min(run_at) FILTER (WHERE status = 'ready') AS oldest_ready_at
  FROM {s}.task
 GROUP BY service, status
 ORDER BY service, status

-- name: browse_key_backlog
-- the overview's longest queues: object keys with the most invocations waiting in their inbox
SELECT service, key, count(*)::bigint AS waiting
  FROM {s}.inbox
 GROUP BY service, key
 ORDER BY waiting DESC, service, key
 LIMIT %(limit)s

-- name: browse_created_per_minute
-- the overview's invocations created per minute over the last hour, and how many of them
-- succeeded or failed: of the newest `cap` at most (walking invocation_created backwards), so
-- that the page stays fast however many the last hour holds
SELECT date_trunc('minute', created_at) AS minute, count(*)::bigint AS created,
       count(*) FILTER (WHERE result = 'success')::bigint AS succeeded,
       count(*) FILTER (WHERE result = 'failure')::bigint AS failed
  FROM (SELECT created_at, result FROM {s}.invocation
         WHERE created_at >= now() - interval '1 hour'
         ORDER BY created_at DESC LIMIT %(cap)s) newest
 GROUP BY 1
 ORDER BY 1

-- name: browse_workers
-- the overview's workers alive (those that heartbeat), with their deployment and services
SELECT id, hostname, pid, deployment_id, services, started_at, heartbeat_at,
       (SELECT count(*) FROM {s}.task t WHERE t.lease_owner = w.id)::bigint AS running
  FROM {s}.worker w
 ORDER BY started_at

-- name: bench_fill_completed
-- bench/ui.py and the UI's plan test: insert completed invocations (one a millisecond, spread
-- over `services` services named BenchN), as retention keeps them; never run by restate-pg itself
INSERT INTO {s}.invocation (id, service, handler, key, service_ty, handler_ty, status, input, invoked_by,
                            created_at, modified_at, completed_at, result, output, attempts)
SELECT 'inv_1' || lpad(to_hex(n), 33, '0'), 'Bench' || mod(n, %(services)s), 'run', NULL, 'service', NULL,
       'completed', '"x"'::bytea, 'ingress', now() - (n * interval '1 millisecond'),
       now() - (n * interval '1 millisecond'), now() - (n * interval '1 millisecond'), 'success', '"y"'::bytea, 1
  FROM generate_series(1, %(count)s) AS n
