-- Creating and upgrading the schema (store/migrate.py and the alembic env.py); the revisions'
-- own SQL is frozen under migrations/sql/.
-- Each statement: `-- name: <name>`, then its purpose; see restate_pg/store/queries.py.

-- name: create_schema
-- the schema restate-pg lives in, made before alembic looks for its version table there
CREATE SCHEMA IF NOT EXISTS {s}

-- name: version_table
-- alembic's version table in the schema (a qualified name), or NULL if restate-pg was never migrated there
SELECT to_regclass(%(table)s)

-- name: migrated_revisions
-- the revisions alembic recorded in the schema (one, unless something else migrated it too)
SELECT version_num FROM {s}.alembic_version

-- name: lock_migrations
-- wait for, then hold until the transaction ends, the lock that serialises migrations of one schema
SELECT pg_advisory_xact_lock(%(key)s)
