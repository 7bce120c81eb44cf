-- An attempt's transaction: its writes go through the server function apply() (store/sql/functions/).
-- Each statement: `-- name: <name>`, then its purpose; see restate_pg/store/queries.py.

-- name: apply
-- commit a group of requests (flushes, submissions) in one transaction; see functions/apply.sql
-- (sent through libpq by store/prepared_call.py, hence `$1`; now() as integer microseconds since
-- the epoch, exact and read alike whatever the session's DateStyle)
SELECT {s}.apply($1::jsonb)::text, (extract(epoch FROM now()) * 1000000)::int8 AS db_now_us

-- name: enqueue
-- create invocations in the application's own transaction, and hint the workers (a
-- NOTIFY is delivered at commit, and dropped with a rollback)
SELECT {s}.apply(CAST(%(requests)s AS jsonb))::text AS started, pg_notify(%(channel)s, '') AS hinted

-- name: flush_in_transaction
-- an attempt's flush on the application's connection, in the transaction
-- of a database step (ctx.run_in_transaction), committed by it with the step's own writes
SELECT {s}.apply(CAST(%(requests)s AS jsonb))::text AS applied,
       extract(epoch FROM now())::float8 AS db_epoch  -- a number: every driver reads it alike

-- name: fence
-- fail the transaction unless this attempt still holds the invocation's lease
SELECT {s}.fence(%(id)s, %(owner)s, %(epoch)s), now() AS db_now

-- name: notify
-- a wake-up hint, sent outside data transactions
SELECT pg_notify(%(channel)s, %(payload)s)
