"""Views that carry Restate's SQL introspection tables, over restate-pg's own tables.

Operators who know `restate sql` ask the same questions here, with the same table and column
names and the same status vocabulary (reference section 4): a query written for Restate runs with
at most the schema prefix changed. Columns that have no counterpart in restate-pg are NULL.

Each view is shaped so that its common question is answered by an index: `sys_invocation` is a
UNION ALL of one branch per storage state, so a filter on `status` drops the branches that cannot
match and a filter on `target_service_name` meets the (service, status) index; `sys_journal` and
`state` are keyed like their tables. Migrations copy this DDL at their revision
(`migrations/versions/0005_introspection.py`); a test checks that they agree.
"""

from __future__ import annotations

#: The views, in creation order.
VIEW_NAMES = (
    "state",
    "sys_invocation",
    "sys_invocation_status",
    "sys_journal",
    "sys_inbox",
    "sys_keyed_service_status",
    "sys_idempotency",
    "sys_promise",
    "sys_service",
    "sys_deployment",
)

#: The helper functions of the views, by signature (for DROP FUNCTION).
FUNCTION_SIGNATURES = ("bytes_as_utf8(bytea)",)

# sys_invocation's columns, as (name, expression) over `i` (invocation), `c` (its caller's
# invocation) and, in the branch of live invocations, `t` (task). `{status}` and the task columns
# differ per branch; see _invocation_branch.
_INVOCATION_COLUMNS = (
    ("id", "i.id"),
    ("target", "i.service || '/' || COALESCE(i.key || '/', '') || i.handler"),
    ("target_service_name", "i.service"),
    ("target_service_key", "i.key"),
    ("target_handler_name", "i.handler"),
    ("target_service_ty", "i.service_ty"),
    ("status", "{status}"),
    ("vqueue_id", "NULL::text"),
    ("scope", "NULL::text"),
    ("limit_key", "NULL::text"),
    ("idempotency_key", "i.idempotency_key"),
    ("invoked_by", "CASE WHEN i.restarted_from IS NOT NULL THEN 'restart_as_new' ELSE i.invoked_by END"),
    ("invoked_by_service_name", "c.service"),
    ("invoked_by_id", "i.caller_id"),
    ("invoked_by_subscription_id", "NULL::text"),
    ("invoked_by_target", "c.service || '/' || COALESCE(c.key || '/', '') || c.handler"),
    ("restarted_from", "i.restarted_from"),
    ("pinned_deployment_id", "i.deployment_id"),
    ("pinned_service_protocol_version", "NULL::integer"),
    ("trace_id", "NULL::text"),
    ("journal_size",
     "(SELECT count(*) FROM {s}.journal j WHERE j.invocation_id = i.id)::integer + 1"
     " + (i.status = 'completed')::integer"),
    ("journal_commands_size",
     "(SELECT count(*) FROM {s}.journal j WHERE j.invocation_id = i.id AND j.command_index IS NOT NULL)::integer"
     " + 1 + (i.status = 'completed')::integer"),
    ("created_at", "i.created_at"),
    ("created_using_restate_version", "NULL::text"),
    ("modified_at", "i.modified_at"),
    ("inboxed_at", "NULL::timestamptz"),
    ("scheduled_at", "CASE WHEN i.scheduled_start_at IS NOT NULL THEN i.created_at END"),
    ("scheduled_start_at", "i.scheduled_start_at"),
    ("running_at", "NULL::timestamptz"),
    ("completed_at", "i.completed_at"),
    ("completion_retention", "i.retain_until - i.completed_at"),
    ("journal_retention", "i.retain_until - i.completed_at"),
    ("suspended_waiting_for_completions", "NULL::integer[]"),
    ("suspended_waiting_for_signals", "NULL::integer[]"),
    ("suspended_waiting_future_json", "NULL::text"),
    ("retry_count", "{retry_count}"),
    ("last_start_at", "{last_start_at}"),
    ("next_retry_at", "{next_retry_at}"),
    ("last_attempt_deployment_id", "{last_attempt_deployment_id}"),
    ("last_attempt_server", "NULL::text"),
    ("last_failure", "{last_failure}"),
    ("last_failure_error_code", "{last_failure_error_code}"),
    ("last_failure_related_entry_index", "NULL::bigint"),
    ("last_failure_related_entry_name", "NULL::text"),
    ("last_failure_related_entry_type", "NULL::text"),
    ("last_failure_related_command_index", "NULL::bigint"),
    ("last_failure_related_command_name", "NULL::text"),
    ("last_failure_related_command_type", "NULL::text"),
    ("last_awaiting_on_future_json", "NULL::text"),
    ("completion_result", "i.result"),
    ("completion_failure",
     "CASE WHEN i.result = 'failure' THEN '[' || i.failure_code || '] ' || i.failure_message END"),
)

_NO_TASK = {
    "retry_count": "NULL::bigint",
    "last_start_at": "NULL::timestamptz",
    "next_retry_at": "NULL::timestamptz",
    "last_attempt_deployment_id": "NULL::text",
    "last_failure": "NULL::text",
    "last_failure_error_code": "NULL::text",
}

_WITH_TASK = {
    "retry_count": "t.attempt::bigint",
    "last_start_at": "t.last_start_at",
    "next_retry_at": "CASE WHEN t.status = 'backing-off' THEN t.run_at END",
    "last_attempt_deployment_id": "t.deployment_id",
    "last_failure": "t.last_failure",
    "last_failure_error_code": "t.last_failure_code::text",
}


def _invocation_branch(status: str, source: str, task: dict[str, str]) -> str:
    columns = ",\n       ".join(
        f"{expression.format(status=status, s='{s}', **task)} AS {name}" for name, expression in _INVOCATION_COLUMNS
    )
    return f"SELECT {columns}\n  {source}\n  LEFT JOIN {{s}}.invocation c ON c.id = i.caller_id"


# Three branches, one per place an invocation's status lives: live ones (scheduled or invoked)
# have a task row whose status is already in Restate's vocabulary; inboxed and completed ones
# have none.
_SYS_INVOCATION = "\nUNION ALL\n".join(
    (
        _invocation_branch("t.status", "FROM {s}.task t JOIN {s}.invocation i ON i.id = t.invocation_id", _WITH_TASK),
        _invocation_branch("'pending'::text", "FROM {s}.invocation i", _NO_TASK) + "\n WHERE i.status = 'inboxed'",
        _invocation_branch("'completed'::text", "FROM {s}.invocation i", _NO_TASK) + "\n WHERE i.status = 'completed'",
    )
)

# A journal entry's JSON rendering: its type, numbers, name, parameters, value and failure.
_ENTRY_LITE_JSON = """jsonb_strip_nulls(jsonb_build_object(
           'type', j.entry_type, 'command_index', j.command_index, 'completes', j.completes,
           'name', j.name, 'params', j.params,
           'failure', CASE WHEN j.failure_code IS NOT NULL THEN jsonb_build_object(
               'code', j.failure_code, 'message', j.failure_message, 'metadata', j.failure_metadata) END))"""

_VALUE_JSON = """jsonb_strip_nulls(jsonb_build_object(
           'value', {s}.bytes_as_utf8({value}),
           'value_base64', CASE WHEN {s}.bytes_as_utf8({value}) IS NULL THEN encode({value}, 'base64') END))"""

_TEMPLATE = r"""
-- bytes_as_utf8: a stored value as text when it is valid UTF-8 (JSON, strings), else NULL
-- (parallel unsafe, the default: its EXCEPTION block starts a subtransaction)
CREATE OR REPLACE FUNCTION {s}.bytes_as_utf8(p_value bytea)
RETURNS text LANGUAGE plpgsql IMMUTABLE STRICT AS $$
BEGIN
    RETURN convert_from(p_value, 'UTF8');
EXCEPTION WHEN character_not_in_repertoire OR untranslatable_character THEN
    RETURN NULL;
END
$$;

-- state: every state value of virtual objects and workflows, as bytes and as text
CREATE OR REPLACE VIEW {s}.state AS
SELECT NULL::text AS scope, service AS service_name, key AS service_key, name AS key,
       octet_length(name)::bigint AS key_length, {s}.bytes_as_utf8(value) AS value_utf8, value,
       octet_length(value)::bigint AS value_length
  FROM {s}.state_entry;

-- sys_invocation: every known invocation with its target, status, retries and result
CREATE OR REPLACE VIEW {s}.sys_invocation AS
{sys_invocation};

-- sys_invocation_status: each invocation's status as Restate stores it (inboxed, scheduled,
-- invoked, suspended, paused, completed), without the attempt columns; Restate's CLI finds the
-- invocations to cancel, kill or purge here
CREATE OR REPLACE VIEW {s}.sys_invocation_status AS
SELECT id, target, target_service_name, target_service_key, target_handler_name, target_service_ty,
       CASE status WHEN 'pending' THEN 'inboxed' WHEN 'ready' THEN 'invoked' WHEN 'running' THEN 'invoked'
                   WHEN 'backing-off' THEN 'invoked' ELSE status END AS status,
       vqueue_id, scope, limit_key, idempotency_key, invoked_by, invoked_by_service_name, invoked_by_id,
       invoked_by_subscription_id, invoked_by_target, restarted_from, pinned_deployment_id,
       pinned_service_protocol_version, trace_id, journal_size, journal_commands_size, created_at,
       created_using_restate_version, modified_at, inboxed_at, scheduled_at, scheduled_start_at, running_at,
       completed_at, completion_retention, journal_retention, suspended_waiting_for_completions,
       suspended_waiting_for_signals, suspended_waiting_future_json, completion_result, completion_failure
  FROM {s}.sys_invocation;

-- sys_journal: the journal of each invocation, with its input (index 0) and, once completed, its
-- output (after the last entry), which restate-pg keeps on the invocation row
CREATE OR REPLACE VIEW {s}.sys_journal AS
SELECT j.invocation_id AS id, j.index,
       CASE WHEN j.command_index IS NOT NULL
            THEN 'Command: ' || CASE j.entry_type WHEN 'GetState' THEN 'GetEagerState'
                                                 WHEN 'GetStateKeys' THEN 'GetEagerStateKeys'
                                                 WHEN 'CancelInvocation' THEN 'SendSignal'
                                                 ELSE j.entry_type END
            ELSE 'Notification: ' || CASE WHEN j.entry_type IN ('Awakeable', 'Cancel') THEN 'Signal'
                                          ELSE j.entry_type END
       END AS entry_type,
       j.name,
       j.command_index IS NULL OR j.completed OR EXISTS (
           SELECT 1 FROM {s}.journal n WHERE n.invocation_id = j.invocation_id AND n.completes = j.command_index
       ) AS completed,
       CASE WHEN j.command_index IS NOT NULL AND j.entry_type IN ('Call', 'OneWayCall')
            THEN j.params->>'invocation_id' END AS invoked_id,
       CASE WHEN j.command_index IS NOT NULL AND j.entry_type IN ('Call', 'OneWayCall')
            THEN (j.params->>'service') || '/' || COALESCE((j.params->>'key') || '/', '') || (j.params->>'handler')
       END AS invoked_target,
       j.sleep_wakeup_at,
       CASE WHEN j.command_index IS NOT NULL AND j.entry_type IN ('GetPromise', 'PeekPromise', 'CompletePromise')
            THEN j.params->>'name' END AS promise_name,
       j.value AS raw, octet_length(j.value)::bigint AS raw_length, 2 AS version,
       ({entry_lite_json} || {journal_value_json})::text AS entry_json,
       {entry_lite_json}::text AS entry_lite_json,
       j.appended_at
  FROM {s}.journal j
UNION ALL
SELECT i.id, 0, 'Command: Input', NULL, true, NULL, NULL, NULL, NULL, i.input, octet_length(i.input)::bigint, 2,
       (jsonb_build_object('type', 'Input', 'headers', i.headers) || {input_value_json})::text,
       jsonb_build_object('type', 'Input', 'headers', i.headers)::text,
       i.created_at
  FROM {s}.invocation i
UNION ALL
SELECT i.id, (SELECT COALESCE(max(j.index), 0) + 1 FROM {s}.journal j WHERE j.invocation_id = i.id),
       'Command: Output', NULL, true, NULL, NULL, NULL, NULL, i.output, octet_length(i.output)::bigint, 2,
       (jsonb_strip_nulls(jsonb_build_object('type', 'Output', 'failure', {output_failure})) || {output_value_json})::text,
       jsonb_strip_nulls(jsonb_build_object('type', 'Output', 'failure', {output_failure}))::text,
       i.completed_at
  FROM {s}.invocation i
 WHERE i.status = 'completed';

-- sys_inbox: exclusive invocations waiting for their object key, in FIFO order per key
CREATE OR REPLACE VIEW {s}.sys_inbox AS
SELECT b.service AS service_name, b.key AS service_key, b.invocation_id AS id, b.seq AS sequence_number,
       i.created_at
  FROM {s}.inbox b LEFT JOIN {s}.invocation i ON i.id = b.invocation_id;

-- sys_keyed_service_status: which invocation holds each locked object key
CREATE OR REPLACE VIEW {s}.sys_keyed_service_status AS
SELECT service AS service_name, key AS service_key, invocation_id
  FROM {s}.object_lock;

-- sys_idempotency: the invocations submitted with an idempotency key, while they are retained
CREATE OR REPLACE VIEW {s}.sys_idempotency AS
SELECT service AS service_name, key AS service_key, handler AS service_handler, idempotency_key,
       id AS invocation_id
  FROM {s}.invocation WHERE idempotency_key IS NOT NULL;

-- sys_promise: the durable promises of workflows
CREATE OR REPLACE VIEW {s}.sys_promise AS
SELECT NULL::text AS scope, service AS service_name, key AS service_key, name AS key, completed,
       CASE WHEN completed AND failure_code IS NULL THEN value END AS completion_success_value,
       CASE WHEN completed AND failure_code IS NULL THEN {s}.bytes_as_utf8(value) END AS completion_success_value_utf8,
       CASE WHEN failure_code IS NOT NULL THEN '[' || failure_code || '] ' || failure_message END AS completion_failure
  FROM {s}.promise;

-- sys_service: the registered services
CREATE OR REPLACE VIEW {s}.sys_service AS
SELECT name, revision::bigint AS revision, public, ty, deployment_id
  FROM {s}.service;

-- sys_deployment: the application versions that ran workers, with the services they registered
CREATE OR REPLACE VIEW {s}.sys_deployment AS
SELECT id, NULL::text AS ty, NULL::text AS endpoint, created_at,
       NULL::integer AS min_service_protocol_version, NULL::integer AS max_service_protocol_version,
       ARRAY(SELECT COALESCE(e->>'name', e#>>'{}') FROM jsonb_array_elements(services) e) AS services
  FROM {s}.deployment;
"""


def introspection_sql(schema: str) -> str:
    """DDL creating (or replacing) the introspection views and their helper in `schema`."""
    ddl = (
        _TEMPLATE.replace("{sys_invocation}", _SYS_INVOCATION)
        .replace("{entry_lite_json}", _ENTRY_LITE_JSON)
        .replace("{journal_value_json}", _VALUE_JSON.replace("{value}", "j.value"))
        .replace("{input_value_json}", _VALUE_JSON.replace("{value}", "i.input"))
        .replace("{output_value_json}", _VALUE_JSON.replace("{value}", "i.output"))
        .replace(
            "{output_failure}",
            "CASE WHEN i.failure_code IS NOT NULL THEN jsonb_build_object("
            "'code', i.failure_code, 'message', i.failure_message, 'metadata', i.failure_metadata) END",
        )
    )
    return ddl.replace("{s}", f'"{schema}"')


def drop_introspection_sql(schema: str) -> str:
    views = [f'DROP VIEW IF EXISTS "{schema}".{name};' for name in reversed(VIEW_NAMES)]
    functions = [f'DROP FUNCTION IF EXISTS "{schema}".{sig};' for sig in FUNCTION_SIGNATURES]
    return "\n".join(views + functions)
