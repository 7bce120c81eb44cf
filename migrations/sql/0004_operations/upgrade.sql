-- Revision 0004 (0004_operations), upgrade. Frozen once released, never edited (migrations/README.md).
ALTER TABLE {schema}.invocation ADD COLUMN deployment_id TEXT;

ALTER TABLE {schema}.invocation ADD COLUMN restarted_from TEXT;

ALTER TABLE {schema}.task ADD COLUMN deployment_id TEXT;

ALTER TABLE {schema}.worker ADD COLUMN deployment_id TEXT;

CREATE TABLE {schema}.deployment (
    id TEXT NOT NULL,
    services JSONB DEFAULT '[]'::jsonb NOT NULL,
    compatible_with TEXT[] DEFAULT '{}'::text[] NOT NULL,
    created_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
    last_seen_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
    CONSTRAINT deployment_pkey PRIMARY KEY (id)
);

CREATE TABLE {schema}.service (
    name TEXT NOT NULL,
    ty TEXT NOT NULL,
    deployment_id TEXT NOT NULL,
    handlers JSONB DEFAULT '[]'::jsonb NOT NULL,
    public BOOLEAN DEFAULT true NOT NULL,
    idempotency_retention INTERVAL,
    workflow_retention INTERVAL,
    journal_retention INTERVAL,
    inactivity_timeout INTERVAL,
    abort_timeout INTERVAL,
    revision INTEGER DEFAULT 1 NOT NULL,
    created_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
    modified_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
    CONSTRAINT service_pkey PRIMARY KEY (name)
);

CREATE TABLE {schema}.cron_job (
    name TEXT NOT NULL,
    service TEXT NOT NULL,
    handler TEXT NOT NULL,
    key TEXT,
    schedule TEXT NOT NULL,
    timezone TEXT DEFAULT 'UTC' NOT NULL,
    input BYTEA,
    headers JSONB DEFAULT '{}'::jsonb NOT NULL,
    catch_up TEXT DEFAULT 'latest' NOT NULL,
    source TEXT DEFAULT 'api' NOT NULL,
    enabled BOOLEAN DEFAULT true NOT NULL,
    next_at TIMESTAMP WITH TIME ZONE NOT NULL,
    last_tick_at TIMESTAMP WITH TIME ZONE,
    last_invocation_id TEXT,
    created_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
    modified_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
    CONSTRAINT cron_job_pkey PRIMARY KEY (name)
);

CREATE INDEX cron_job_due ON {schema}.cron_job (next_at) WHERE enabled;
