-- Flow control: the rules, and what the admin API, the CLI, metrics and the UI show of queues.
-- Each statement: `-- name: <name>`, then its purpose; see restate_pg/store/queries.py.

-- name: list_flow_rules
-- every flow-control rule, most general first
SELECT pattern, level, scope_part, l1_part, concurrency, rate, rate_interval_ms, burst, backlog,
       concurrency_per_key, priority, debounce_ms, description, disabled, version,
       (EXTRACT(EPOCH FROM last_modified) * 1000)::bigint AS last_modified_millis
  FROM {s}.flow_rule ORDER BY level, rank, pattern

-- name: upsert_flow_rule
-- create or replace one rule (its version goes up by one); returns its version, or nothing
-- when `expected_version` is given and differs (or, with -1, when the rule exists already)
INSERT INTO {s}.flow_rule AS r (pattern, level, scope_part, l1_part, l2_part, rank, concurrency, rate, rate_interval_ms,
                                burst, backlog, concurrency_per_key, priority, debounce_ms, description, disabled)
VALUES (%(pattern)s, %(level)s, %(scope_part)s, %(l1_part)s, %(l2_part)s, %(rank)s, %(concurrency)s, %(rate)s,
        %(rate_interval_ms)s, %(burst)s, %(backlog)s, %(concurrency_per_key)s, %(priority)s, %(debounce_ms)s,
        %(description)s, %(disabled)s)
ON CONFLICT (pattern) DO UPDATE
   SET concurrency = EXCLUDED.concurrency, rate = EXCLUDED.rate, rate_interval_ms = EXCLUDED.rate_interval_ms,
       burst = EXCLUDED.burst, backlog = EXCLUDED.backlog, concurrency_per_key = EXCLUDED.concurrency_per_key,
       priority = EXCLUDED.priority, debounce_ms = EXCLUDED.debounce_ms, description = EXCLUDED.description,
       disabled = EXCLUDED.disabled, version = r.version + 1, last_modified = now()
 WHERE %(expected_version)s::integer IS NULL OR r.version = %(expected_version)s::integer
RETURNING version

-- name: delete_flow_rule
-- delete one rule (only at `expected_version` when given); returns its pattern if it went
DELETE FROM {s}.flow_rule
 WHERE pattern = %(pattern)s AND (%(expected_version)s::integer IS NULL OR version = %(expected_version)s::integer)
RETURNING pattern

-- name: flow_rule_version
-- the version of one rule, if it exists
SELECT version FROM {s}.flow_rule WHERE pattern = %(pattern)s

-- name: lock_target_rules
-- wait for the submissions of a service that probed its rules to commit, and hold off new ones
-- (they take this lock shared) until a rule's transaction ends: each then sees the rule or is marked
SELECT pg_advisory_xact_lock(1919969027, hashtext(%(service)s))

-- name: mark_target_tasks
-- bring the tasks of a service (and handler) a new target rule names under flow control, running
-- ones too (they count towards its limits, and resume through its claim); those another transaction
-- holds locked at this instant are skipped (it never waits, so never deadlocks): the caller repeats
UPDATE {s}.task t
   SET flow_target = i.service || '/' || i.handler, flow_key = COALESCE(i.limit_key, i.key),
       priority = CASE WHEN t.priority = 0 THEN COALESCE(%(priority)s::integer, 0) ELSE t.priority END
  FROM {s}.invocation i
 WHERE i.id = t.invocation_id AND t.flow_target IS NULL
   AND t.invocation_id IN (SELECT q.invocation_id FROM {s}.task q
                            WHERE q.service = %(service)s AND q.flow_target IS NULL
                              FOR UPDATE SKIP LOCKED)
   AND (%(handler)s::text IS NULL OR i.handler = %(handler)s::text)

-- name: unmarked_target_tasks
-- how many tasks of a service (and handler) an enabled rule names are not marked yet (skipped as locked)
SELECT count(*) AS unmarked
  FROM {s}.task t JOIN {s}.invocation i ON i.id = t.invocation_id
 WHERE t.service = %(service)s AND t.flow_target IS NULL
   AND (%(handler)s::text IS NULL OR i.handler = %(handler)s::text)

-- name: target_rule_services
-- the services that an enabled rule on a service or handler names: their invocations are never
-- started by the process that submits them (only a claim checks the rules)
SELECT DISTINCT scope_part AS service FROM {s}.flow_rule WHERE level >= 3 AND NOT disabled

-- name: flow_queues
-- per scope and limit key with unfinished invocations: running, queued and waiting counts (sys_vqueues)
SELECT scope, limit_key, num_running, num_queued, num_waiting, oldest_queued_ms, max_priority
  FROM {s}.sys_vqueues ORDER BY scope, limit_key NULLS FIRST

-- name: flow_target_queues
-- per service/handler that a rule names, with unfinished invocations: running, queued (due) and waiting
SELECT t.flow_target AS target,
       count(*) FILTER (WHERE t.lease_owner IS NOT NULL)::bigint AS running,
       count(*) FILTER (WHERE t.lease_owner IS NULL AND t.run_at <= now() AND t.status = 'ready')::bigint AS queued,
       count(*) FILTER (WHERE t.lease_owner IS NULL AND NOT (t.run_at <= now() AND t.status = 'ready'))::bigint AS waiting,
       (EXTRACT(EPOCH FROM now() - min(t.run_at) FILTER (WHERE t.lease_owner IS NULL AND t.run_at <= now() AND t.status = 'ready')) * 1000)::bigint
           AS oldest_queued_ms
  FROM {s}.task t
 WHERE t.flow_target IS NOT NULL
 GROUP BY t.flow_target ORDER BY t.flow_target

-- name: flow_scope_gauges
-- per scope with unfinished invocations: how many run, queue (due) and wait (not due), for metrics
SELECT scope, sum(num_running)::bigint AS running, sum(num_queued)::bigint AS queued,
       sum(num_waiting)::bigint AS waiting
  FROM {s}.sys_vqueues GROUP BY scope ORDER BY scope
