"""The PostgreSQL tables of restate-pg, as SQLAlchemy metadata.

This is the description the tables are checked against (tests/test_migrations.py compares it with
a migrated database); the statements themselves live in `sql/` as plain SQL (`queries.py` loads
them), and the migrations run frozen SQL files (`migrations/sql/`).
`docs/invocation-lifecycle.md` explains what each table is for. The schema name is a parameter so that an application can keep restate-pg next to its own tables
under any name (`restate` by default).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Double,
    Identity,
    Index,
    Integer,
    Interval,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from restate_pg.store.errors import FENCED_SQLSTATE  # noqa: F401  (defined where it is caught: no SQLAlchemy there)
from restate_pg.store.queries import DEFAULT_SCHEMA, fill_schema, read_sql  # noqa: F401  (re-exported)


def _ts(name: str, *, nullable: bool = True, default_now: bool = False) -> Column:
    return Column(
        name,
        DateTime(timezone=True),
        nullable=nullable,
        server_default=text("now()") if default_now else None,
    )


def build_metadata(schema: str = DEFAULT_SCHEMA) -> MetaData:
    """Return the table definitions, placed in `schema`."""
    md = MetaData(schema=schema)

    Table(
        "invocation",
        md,
        Column("id", Text, primary_key=True),
        Column("service", Text, nullable=False),
        Column("handler", Text, nullable=False),
        Column("key", Text),
        Column("service_ty", Text, nullable=False),  # service | virtual_object | workflow
        Column("handler_ty", Text),  # exclusive | shared | workflow; NULL for services
        Column("status", Text, nullable=False),  # scheduled | inboxed | invoked | completed
        Column("input", LargeBinary, nullable=False),
        Column("headers", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
        Column("idempotency_key", Text),
        Column("invoked_by", Text, nullable=False),  # ingress | service | restart_as_new
        Column("caller_id", Text),
        Column("caller_command", Integer),  # the caller's Call command this result completes
        Column("waiter", Text),  # process to tell on completion: a process id, or '*'
        _ts("created_at", nullable=False, default_now=True),
        _ts("modified_at", nullable=False, default_now=True),
        _ts("scheduled_start_at"),
        _ts("completed_at"),
        Column("result", Text),  # success | failure
        Column("output", LargeBinary),
        Column("failure_code", Integer),
        Column("failure_message", Text),
        Column("failure_metadata", JSONB),
        _ts("retain_until"),
        Column("deployment_id", Text),  # the deployment it is pinned to, from its first attempt
        Column("restarted_from", Text),  # the invocation it re-runs (restart-as-new)
        Column("attempts", Integer),  # attempts it took, kept at completion (flush, finish_invocation)
        # flow control (docs/flow-control.md): what its rules match, its claim order, its debounce identity
        Column("scope", Text),
        Column("limit_key", Text),
        Column("priority", Integer, nullable=False, server_default=text("0")),
        Column("debounce_key", Text),
        Index("invocation_service_status", "service", "status"),
        Index("invocation_created", "created_at", "id"),  # the operator UI's keyset pages
        Index("invocation_service_created", "service", "created_at", "id"),
        Index("invocation_failed_created", "created_at", "id", postgresql_where=text("result = 'failure'")),
        Index("invocation_debounce", "service", "handler", text("(COALESCE(key, ''::text))"), "debounce_key", unique=True,
              postgresql_where=text("debounce_key IS NOT NULL AND status = 'scheduled'")),
        Index(
            "invocation_retain_until",
            "retain_until",
            postgresql_where=text("retain_until IS NOT NULL"),
        ),
    )

    Table(
        "task",
        md,
        Column("invocation_id", Text, primary_key=True),
        Column("service", Text, nullable=False),
        Column("status", Text, nullable=False),  # scheduled|ready|running|suspended|backing-off|paused
        Column("run_at", DateTime(timezone=True), nullable=False),
        Column("lease_owner", Text),
        Column("epoch", Integer, nullable=False, server_default=text("0")),
        Column("attempt", Integer, nullable=False, server_default=text("0")),
        Column("wakeups", BigInteger, nullable=False, server_default=text("0")),
        _ts("last_start_at"),
        Column("last_failure", Text),
        Column("last_failure_code", Integer),
        Column("deployment_id", Text),  # mirrors invocation.deployment_id for the claim
        Column("scope", Text),  # mirror the invocation's, for claim_flow and its counts
        Column("limit_key", Text),
        Column("priority", Integer, nullable=False, server_default=text("0")),
        Column("flow_target", Text),  # service/handler, when a rule names either (migration 0014)
        Column("flow_key", Text),  # its tenant key for per-key limits: the limit key, else the object key
        Index("task_due", "run_at", postgresql_where=text("lease_owner IS NULL")),
        Index("task_flow_due", "run_at",
              postgresql_where=text("lease_owner IS NULL AND (scope IS NOT NULL OR priority <> 0 OR flow_target IS NOT NULL)")),
        Index("task_flow_target", "flow_target", "flow_key", postgresql_where=text("flow_target IS NOT NULL")),
        Index("task_scope", "scope", "limit_key", postgresql_where=text("scope IS NOT NULL")),
        Index("task_owner", "lease_owner", postgresql_where=text("lease_owner IS NOT NULL")),
        Index("task_scheduled", "run_at", postgresql_where=text("status = 'scheduled'")),
        postgresql_with={
            "fillfactor": "70",
            "autovacuum_vacuum_scale_factor": "0.01",
            "autovacuum_vacuum_cost_delay": "0",
        },
    )

    Table(
        "journal",
        md,
        Column("invocation_id", Text, nullable=False),
        Column("index", Integer, nullable=False),  # write order, from 1 (0 is the input)
        Column("command_index", Integer),  # issue order of commands; NULL for notifications
        Column("completes", Integer),  # for notifications: the command_index they complete
        Column("entry_type", Text, nullable=False),
        Column("name", Text),
        Column("params", JSONB),  # what identifies the command on replay
        Column("completed", Boolean, nullable=False, server_default=text("false")),
        Column("value", LargeBinary),
        Column("failure_code", Integer),
        Column("failure_message", Text),
        Column("failure_metadata", JSONB),
        _ts("sleep_wakeup_at"),  # for Sleep commands: when the timer fires (database clock)
        _ts("appended_at", nullable=False, default_now=True),
        Column("message", LargeBinary),  # an SDK endpoint's command, as it sent it (replayed as is)
        PrimaryKeyConstraint("invocation_id", "index"),
    )

    Table(
        "notification",
        md,
        Column("seq", BigInteger, Identity(always=False), primary_key=True),
        Column("invocation_id", Text, nullable=False),
        Column("command_index", Integer),
        Column("value", LargeBinary),
        Column("failure_code", Integer),
        Column("failure_message", Text),
        Column("failure_metadata", JSONB),
        _ts("created_at", nullable=False, default_now=True),
        Column("signal_name", Text),  # a signal delivered by name (by index: command_index is minus it)
        Index("notification_invocation", "invocation_id", "seq"),
    )

    Table(
        "state_entry",  # K/V state of objects and workflows; the view `state` shows it as Restate does
        md,
        Column("service", Text, nullable=False),
        Column("key", Text, nullable=False),
        Column("name", Text, nullable=False),
        Column("value", LargeBinary, nullable=False),
        PrimaryKeyConstraint("service", "key", "name"),
    )

    Table(
        "object_lock",
        md,
        Column("service", Text, nullable=False),
        Column("key", Text, nullable=False),
        Column("invocation_id", Text, nullable=False),
        _ts("acquired_at", nullable=False, default_now=True),
        PrimaryKeyConstraint("service", "key"),
    )

    Table(
        "inbox",
        md,
        Column("seq", BigInteger, Identity(always=False), primary_key=True),
        Column("service", Text, nullable=False),
        Column("key", Text, nullable=False),
        Column("invocation_id", Text, nullable=False, unique=True),
        Index("inbox_key", "service", "key", "seq"),
    )

    Table(
        "promise",  # durable promises of workflows, by workflow (service, key) and name
        md,
        Column("service", Text, nullable=False),
        Column("key", Text, nullable=False),
        Column("name", Text, nullable=False),
        Column("completed", Boolean, nullable=False, server_default=text("false")),
        Column("value", LargeBinary),
        Column("failure_code", Integer),
        Column("failure_message", Text),
        Column("failure_metadata", JSONB),
        Column("completed_by", Text),  # the invocation and command that completed it
        Column("completed_by_command", Integer),
        _ts("completed_at"),
        PrimaryKeyConstraint("service", "key", "name"),
    )

    Table(
        "promise_waiter",  # GetPromise commands waiting for a promise to complete
        md,
        Column("service", Text, nullable=False),
        Column("key", Text, nullable=False),
        Column("name", Text, nullable=False),
        Column("invocation_id", Text, nullable=False),
        Column("command_index", Integer, nullable=False),
        PrimaryKeyConstraint("service", "key", "name", "invocation_id", "command_index"),
    )

    Table(
        "invocation_waiter",  # AttachInvocation commands waiting for an invocation to complete
        md,
        Column("invocation_id", Text, nullable=False),
        Column("waiter_id", Text, nullable=False),
        Column("command_index", Integer, nullable=False),
        PrimaryKeyConstraint("invocation_id", "waiter_id", "command_index"),
    )

    Table(
        "worker",
        md,
        Column("id", Text, primary_key=True),
        Column("hostname", Text, nullable=False),
        Column("pid", Integer, nullable=False),
        Column("services", ARRAY(Text), nullable=False),
        _ts("started_at", nullable=False, default_now=True),
        _ts("heartbeat_at", nullable=False, default_now=True),
        Column("deployment_id", Text),
        Column("lease_ms", Integer),  # its own lease: the reaper judges it by this (0016)
    )

    Table(
        "deployment",  # an application version that ran workers
        md,
        Column("id", Text, primary_key=True),
        Column("services", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
        # deployments whose pinned invocations this one may resume (marked by an operator)
        Column("compatible_with", ARRAY(Text), nullable=False, server_default=text("'{}'::text[]")),
        _ts("created_at", nullable=False, default_now=True),
        _ts("last_seen_at", nullable=False, default_now=True),
        # an SDK endpoint registered over Restate's service protocol (NULL uri: in-process Python)
        Column("uri", Text),
        Column("protocol_mode", Text),
        Column("min_protocol_version", Integer),
        Column("max_protocol_version", Integer),
        Column("use_http_11", Boolean, nullable=False, server_default=text("false")),
        Column("additional_headers", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
        Column("sdk_version", Text),
        Column("manifest", JSONB),
        Index("deployment_uri", "uri", unique=True, postgresql_where=text("uri IS NOT NULL")),
    )

    Table(
        "service",  # the registry of services, with the settings an operator may change
        md,
        Column("name", Text, primary_key=True),
        Column("ty", Text, nullable=False),
        Column("deployment_id", Text, nullable=False),  # the latest deployment that registered it
        Column("handlers", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
        Column("public", Boolean, nullable=False, server_default=text("true")),
        Column("idempotency_retention", Interval),
        Column("workflow_retention", Interval),
        Column("journal_retention", Interval),
        Column("inactivity_timeout", Interval),
        Column("abort_timeout", Interval),
        Column("revision", Integer, nullable=False, server_default=text("1")),
        _ts("created_at", nullable=False, default_now=True),
        _ts("modified_at", nullable=False, default_now=True),
    )

    Table(
        "cron_job",  # a schedule that starts one invocation per tick of a cron expression
        md,
        Column("name", Text, primary_key=True),
        Column("service", Text, nullable=False),
        Column("handler", Text, nullable=False),
        Column("key", Text),
        Column("schedule", Text, nullable=False),
        Column("timezone", Text, nullable=False, server_default=text("'UTC'")),
        Column("input", LargeBinary),
        Column("headers", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
        Column("catch_up", Text, nullable=False, server_default=text("'latest'")),  # latest | all | skip
        Column("source", Text, nullable=False, server_default=text("'api'")),  # code | api
        Column("enabled", Boolean, nullable=False, server_default=text("true")),
        _ts("next_at", nullable=False),
        _ts("last_tick_at"),
        Column("last_invocation_id", Text),
        _ts("created_at", nullable=False, default_now=True),
        _ts("modified_at", nullable=False, default_now=True),
        Column("scope", Text),  # flow control of each tick's invocation (migration 0013)
        Column("limit_key", Text),
        Column("priority", Integer, nullable=False, server_default=text("0")),
        Index("cron_job_due", "next_at", postgresql_where=text("enabled")),
    )

    Table(
        "flow_rule",  # a flow-control rule: a pattern of scope and limit key, and its limits
        md,
        Column("pattern", Text, primary_key=True),  # `*`, `scope`, `scope/l1`, `scope/*/l2` ... as Restate writes them
        Column("level", Integer, nullable=False),  # 0: the scope, 1/2: the limit key's parts; 3: a service, 4: a handler
        Column("scope_part", Text, nullable=False),  # each part: `*` or the exact value
        Column("l1_part", Text),
        Column("l2_part", Text),
        Column("rank", Integer, nullable=False),  # Restate's precedence: exact parts as bits, the scope highest
        Column("concurrency", Integer),  # most leased (running) at once
        Column("rate", Integer),  # tokens per rate_interval_ms, bucket of `burst`: first attempts started
        Column("rate_interval_ms", BigInteger),
        Column("burst", Integer),
        Column("backlog", Integer),  # most queued: submissions beyond are refused (429)
        Column("concurrency_per_key", Integer),  # target rules (levels 3, 4; migration 0014): per tenant key
        Column("priority", Integer),  # target rules: the default priority of their invocations
        Column("debounce_ms", BigInteger),  # target rules: the window of sends with a debounce key
        Column("description", Text),
        Column("disabled", Boolean, nullable=False, server_default=text("false")),
        Column("version", Integer, nullable=False, server_default=text("1")),
        _ts("last_modified", nullable=False, default_now=True),
    )

    Table(
        "flow_counter",  # per scope (limit_key '') and limit key: the claims' mutex, a rate's bucket
        md,
        Column("scope", Text, primary_key=True),
        Column("limit_key", Text, primary_key=True),
        Column("tokens", Double),
        _ts("refilled_at"),
    )

    return md


def fence_function_sql(schema: str) -> str:
    """DDL of `fence()` (`sql/functions/fence.sql`): the first statement of every transaction an
    attempt commits.

    It share-locks the invocation's task row and fails with `FENCED_SQLSTATE` unless the attempt
    still holds the lease, so a worker that lost its lease (paused, partitioned, declared dead) can
    never apply a stale write.
    """
    return fill_schema(read_sql("functions", "fence"), schema)
