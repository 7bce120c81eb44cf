-- Cron schedules.
-- Each statement: `-- name: <name>`, then its purpose; see restate_pg/store/queries.py.

-- name: create_cron
-- register a schedule made at run time; no row back when the name is taken
INSERT INTO {s}.cron_job (name, service, handler, key, schedule, timezone, input, headers,
                         catch_up, source, enabled, next_at, scope, limit_key, priority)
VALUES (%(name)s, %(service)s, %(handler)s, %(key)s, %(schedule)s, %(timezone)s, %(input)s,
        %(headers)s, %(catch_up)s, %(source)s, %(enabled)s, %(next_at)s, %(scope)s, %(limit_key)s, %(priority)s)
ON CONFLICT (name) DO NOTHING
RETURNING name

-- name: sync_code_cron
-- upsert a code-declared schedule (next tick kept unless its timing changed); no row if run-time made
INSERT INTO {s}.cron_job (name, service, handler, key, schedule, timezone, input, headers,
                         catch_up, source, enabled, next_at, scope, limit_key, priority)
VALUES (%(name)s, %(service)s, %(handler)s, %(key)s, %(schedule)s, %(timezone)s, %(input)s,
        %(headers)s, %(catch_up)s, %(source)s, %(enabled)s, %(next_at)s, %(scope)s, %(limit_key)s, %(priority)s)
ON CONFLICT (name) DO UPDATE
   SET service = EXCLUDED.service, handler = EXCLUDED.handler, key = EXCLUDED.key,
       input = EXCLUDED.input, headers = EXCLUDED.headers, catch_up = EXCLUDED.catch_up,
       schedule = EXCLUDED.schedule, timezone = EXCLUDED.timezone,
       scope = EXCLUDED.scope, limit_key = EXCLUDED.limit_key, priority = EXCLUDED.priority,
       next_at = CASE WHEN (cron_job.schedule, cron_job.timezone) = (EXCLUDED.schedule, EXCLUDED.timezone)
                      THEN cron_job.next_at ELSE EXCLUDED.next_at END,
       modified_at = CASE WHEN (cron_job.service, cron_job.handler, cron_job.key, cron_job.input, cron_job.headers,
                                cron_job.catch_up, cron_job.schedule, cron_job.timezone,
                                cron_job.scope, cron_job.limit_key, cron_job.priority)
                               IS NOT DISTINCT FROM
                               (EXCLUDED.service, EXCLUDED.handler, EXCLUDED.key, EXCLUDED.input, EXCLUDED.headers,
                                EXCLUDED.catch_up, EXCLUDED.schedule, EXCLUDED.timezone,
                                EXCLUDED.scope, EXCLUDED.limit_key, EXCLUDED.priority)
                          THEN cron_job.modified_at ELSE now() END
 WHERE cron_job.source = 'code'
RETURNING name

-- name: delete_stale_code_crons
-- forget the code-declared schedules of these services that the code no longer declares
DELETE FROM {s}.cron_job
 WHERE source = 'code' AND service = ANY(%(services)s) AND NOT name = ANY(%(names)s)
RETURNING name

-- name: list_crons
-- schedules (all, or the one named), by name
SELECT name, service, handler, key, schedule, timezone, input, headers, catch_up, source, enabled,
       next_at, last_tick_at, last_invocation_id, created_at, modified_at, scope, limit_key, priority
  FROM {s}.cron_job
 WHERE %(name)s::text IS NULL OR name = %(name)s
 ORDER BY name

-- name: set_cron_enabled
-- pause or resume a schedule; resuming starts again from the given next tick
UPDATE {s}.cron_job
   SET next_at = CASE WHEN %(enabled)s AND NOT enabled THEN %(next_at)s ELSE next_at END,
       enabled = %(enabled)s, modified_at = now()
 WHERE name = %(name)s
RETURNING name

-- name: delete_cron
-- forget a schedule (the invocations it started are left alone)
DELETE FROM {s}.cron_job WHERE name = %(name)s RETURNING name

-- name: claim_due_crons
-- lock due schedules of the given handlers ('Service/handler') for this
-- transaction (other workers skip them; a worker without the handler never takes its ticks)
SELECT name, service, handler, key, schedule, timezone, input, headers, catch_up, next_at, now() AS db_now,
       scope, limit_key, priority
  FROM {s}.cron_job
 WHERE enabled AND next_at <= now() AND service || '/' || handler = ANY(%(targets)s)
 ORDER BY next_at
 LIMIT %(limit)s
   FOR UPDATE SKIP LOCKED

-- name: advance_cron
-- record a schedule's fired tick (if any) and its next one
UPDATE {s}.cron_job
   SET next_at = %(next_at)s,
       last_tick_at = COALESCE(%(tick)s, last_tick_at),
       last_invocation_id = COALESCE(%(invocation_id)s, last_invocation_id)
 WHERE name = %(name)s

-- name: next_cron_due
-- seconds until the earliest enabled schedule of the given handlers is due
SELECT EXTRACT(EPOCH FROM (min(next_at) - now()))::float8
  FROM {s}.cron_job
 WHERE enabled AND service || '/' || handler = ANY(%(targets)s)
