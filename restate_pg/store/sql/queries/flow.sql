-- Flow control: the rules, and what the admin API, the CLI, metrics and the UI show of queues.
-- Each statement: `-- name: <name>`, then its purpose; see restate_pg/store/queries.py.

-- name: list_flow_rules
-- every flow-control rule, most general first
SELECT pattern, concurrency, rate, rate_interval_ms, burst, backlog, description, disabled, version,
       (EXTRACT(EPOCH FROM last_modified) * 1000)::bigint AS last_modified_millis
  FROM {s}.flow_rule ORDER BY level, rank, pattern

-- name: upsert_flow_rule
-- create or replace one rule (its version goes up by one); returns its version, or nothing
-- when `expected_version` is given and differs (or, with -1, when the rule exists already)
INSERT INTO {s}.flow_rule AS r (pattern, level, scope_part, l1_part, l2_part, rank, concurrency, rate, rate_interval_ms,
                                burst, backlog, description, disabled)
VALUES (%(pattern)s, %(level)s, %(scope_part)s, %(l1_part)s, %(l2_part)s, %(rank)s, %(concurrency)s, %(rate)s,
        %(rate_interval_ms)s, %(burst)s, %(backlog)s, %(description)s, %(disabled)s)
ON CONFLICT (pattern) DO UPDATE
   SET concurrency = EXCLUDED.concurrency, rate = EXCLUDED.rate, rate_interval_ms = EXCLUDED.rate_interval_ms,
       burst = EXCLUDED.burst, backlog = EXCLUDED.backlog, description = EXCLUDED.description,
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

-- name: flow_queues
-- per scope and limit key with unfinished invocations: running, queued and waiting counts (sys_vqueues)
SELECT scope, limit_key, num_running, num_queued, num_waiting, oldest_queued_ms, max_priority
  FROM {s}.sys_vqueues ORDER BY scope, limit_key NULLS FIRST

-- name: flow_scope_gauges
-- per scope with unfinished invocations: how many run, queue (due) and wait (not due), for metrics
SELECT scope, sum(num_running)::bigint AS running, sum(num_queued)::bigint AS queued,
       sum(num_waiting)::bigint AS waiting
  FROM {s}.sys_vqueues GROUP BY scope ORDER BY scope
