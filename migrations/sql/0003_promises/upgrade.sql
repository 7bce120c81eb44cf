-- Revision 0003 (0003_promises), upgrade. Frozen once released, never edited (migrations/README.md).
CREATE TABLE {schema}.promise (
    service TEXT NOT NULL,
    key TEXT NOT NULL,
    name TEXT NOT NULL,
    completed BOOLEAN DEFAULT false NOT NULL,
    value BYTEA,
    failure_code INTEGER,
    failure_message TEXT,
    failure_metadata JSONB,
    completed_by TEXT,
    completed_by_command INTEGER,
    completed_at TIMESTAMP WITH TIME ZONE,
    CONSTRAINT promise_pkey PRIMARY KEY (service, key, name)
);

CREATE TABLE {schema}.promise_waiter (
    service TEXT NOT NULL,
    key TEXT NOT NULL,
    name TEXT NOT NULL,
    invocation_id TEXT NOT NULL,
    command_index INTEGER NOT NULL,
    CONSTRAINT promise_waiter_pkey PRIMARY KEY (service, key, name, invocation_id, command_index)
);

CREATE TABLE {schema}.invocation_waiter (
    invocation_id TEXT NOT NULL,
    waiter_id TEXT NOT NULL,
    command_index INTEGER NOT NULL,
    CONSTRAINT invocation_waiter_pkey PRIMARY KEY (invocation_id, waiter_id, command_index)
);
