-- Inspecting for tests and test databases (restate_pg.testing).
-- {name} and {table} are identifiers composed by psycopg (sql.SQL(...).format), not filled by the loader.
-- Each statement: `-- name: <name>`, then its purpose; see restate_pg/store/queries.py.

-- name: test_journal
-- one invocation's journal, as sys_journal shows it, in order
SELECT * FROM {s}.sys_journal WHERE id = %(id)s ORDER BY index

-- name: create_database
-- a fresh database for one test session
CREATE DATABASE {name}

-- name: end_database_sessions
-- end the connections a test or a worker left on a database about to go
SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %(name)s AND pid <> pg_backend_pid()

-- name: drop_database
-- remove a test session's database
DROP DATABASE IF EXISTS {name}

-- name: schema_tables
-- the tables of restate-pg's schema, but alembic's version table
SELECT tablename FROM pg_tables WHERE schemaname = %(schema)s AND tablename <> %(version_table)s

-- name: empty_table
-- remove every row of one restate-pg table between two tests (not TRUNCATE: see below)
-- TRUNCATE gives every table and index new files, hundreds per test, and each checkpoint (DROP
-- DATABASE waits for one) must then fsync them all: tens of seconds in a busy test run
DELETE FROM {table}

-- name: restart_identities
-- restart the identity sequences of restate-pg's tables, as TRUNCATE ... RESTART IDENTITY would
SELECT setval(format('%%I.%%I', n.nspname, c.relname), s.seqstart, false)
  FROM pg_sequence s JOIN pg_class c ON c.oid = s.seqrelid JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = %(schema)s
