"""The server-side functions of the write path: their list, and the constants they share with Python.

Every transaction an invocation commits on its hot path (its creation, each journal flush, its
completion) runs as one call of `apply(requests)`: the client sends one prepared statement with
one JSON argument, and PostgreSQL runs the statements below from plans it cached on the first
call of the session. Parsing, planning and sending a dozen statements per flush cost several times
more, on both sides, than running them (issue 3's profiles). One call can carry the requests of
many concurrent attempts (`group_commit`).

Each function is one named step of `docs/invocation-lifecycle.md`, with its purpose in one line,
in a file of its own: `store/sql/functions/<name>.sql`. Binary values travel in the JSON as
base64. The migrations create these functions from frozen copies (`migrations/sql/<revision>/`);
tests/test_migrations.py checks that a migrated database agrees with the files. A function whose
contract (arguments, or the JSON it reads or returns) changes gets a new name in a new revision,
so that old and new workers each call the one they know during a rolling upgrade
(migrations/README.md).

The constants below are written as literals in the SQL files too; tests/test_sql_files.py
checks that both sides agree.
"""

from __future__ import annotations

from restate_pg.store.queries import fill_schema, read_sql

#: First half of the two-int advisory lock key of object keys ("rpg" + 1), so that restate-pg's
#: locks never collide with the application's own advisory locks on single bigint keys.
OBJECT_LOCK_NAMESPACE = 0x72706701

#: First half of the advisory lock key of durable promises ("rpg" + 2).
PROMISE_LOCK_NAMESPACE = 0x72706702

#: First half of the advisory lock key of a service's target rules ("rpg" + 3): held shared by
#: each submission while it probes them, exclusively by a rule's creation (docs/flow-control.md).
TARGET_RULES_LOCK_NAMESPACE = 0x72706703

#: First half of the advisory lock key of a scope's or a service's backlog ("rpg" + 4): held by a
#: backlog-checked submission from its count until it commits.
BACKLOG_LOCK_NAMESPACE = 0x72706704

#: The mailbox "command" of the cancel signal (commands are numbered from 1).
CANCEL_SIGNAL = -1

#: Up to this many bytes of an object key's state are sent with an attempt that starts here.
EAGER_STATE_LIMIT = 64 * 1024

#: The functions, in creation order, by name; their signatures are for DROP FUNCTION.
FUNCTION_SIGNATURES = (
    "flow_rule_for(text, text, integer)",
    "claim_flow(text, text[], integer, text[], text[], text)",
    "flow_released()",
    "lock_object_key(text, text)",
    "submit_invocation(jsonb)",
    "release_object_key(text, text, text, text)",
    "start_due_scheduled(text[], integer)",
    "eager_state(text, text)",
    "deliver_notification(text, integer, bytea, integer, text, jsonb)",
    "resolve_awakeable(jsonb)",
    "resolve_signal(jsonb)",
    "lock_promise(text, text, text)",
    "get_promise(text, text, text, text, integer, boolean)",
    "complete_promise(text, text, jsonb)",
    "attach_invocation(text, text, integer)",
    "finish_invocation(text, integer, text)",
    "cancel_invocation(text)",
    "kill_invocation(text)",
    "started(jsonb, text)",
    "append_journal(jsonb)",
    "flush(jsonb)",
    "apply(jsonb)",
)


def function_names() -> tuple[str, ...]:
    """The write-path functions' names, in creation order (each is `sql/functions/<name>.sql`)."""
    return tuple(signature.split("(")[0] for signature in FUNCTION_SIGNATURES)


def procedures_sql(schema: str) -> str:
    """DDL creating (or replacing) the write-path functions in `schema`."""
    return fill_schema("".join("\n" + read_sql("functions", name) for name in function_names()), schema)


def drop_procedures_sql(schema: str) -> str:
    """DDL dropping the write-path functions of `schema`, in reverse creation order."""
    return "\n".join(f'DROP FUNCTION IF EXISTS "{schema}".{sig};' for sig in reversed(FUNCTION_SIGNATURES))
