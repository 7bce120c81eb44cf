"""Operators' SQL: one read-only query, answered with JSON-safe rows.

Shared by the admin API's `POST /query` and `restate-pg sql`. Each query gets a connection of its
own, so that nothing it sets outlives it, and runs in a READ ONLY transaction that is rolled back,
under a statement timeout, with restate-pg's schema first on the search_path so that queries
written for `restate sql` (`SELECT * FROM sys_invocation`) run unqualified while the application's
own tables still resolve. The query is sent as a prepared statement: PostgreSQL then refuses more
than one statement in the string, so `COMMIT; DELETE ...` cannot step out of the transaction.

READ ONLY refuses writes, not everything with an effect: a read-only transaction may still end or
cancel other sessions (`pg_terminate_backend`, the workers' own when the role is theirs), reload
the configuration, switch the WAL, reset statistics, consume a replication slot, write a server
file (`COPY ... TO PROGRAM`, `lo_export`), or run SQL text (`query_to_xml`, `dblink`), none of
which a rollback undoes. `refuse_side_effects` refuses those statements and functions by name
before the query is sent. It guards against running them by mistake; it is not a security
boundary (a function of the application's that calls one is not seen): for a guarantee, give
the operators' tools a database URL whose role has no more than SELECT.
"""

from __future__ import annotations

import base64
import contextlib
import re
import typing
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal

import psycopg

from restate_pg.core.errors import DatabaseUnavailable, RestatePgError
from restate_pg.store.database import connect
from restate_pg.store.errors import UNAVAILABLE_CLASSES
from restate_pg.store.queries import Queries

#: How long a query may run unless the caller says otherwise.
DEFAULT_TIMEOUT_S = 30.0

_READ_ONLY_SQLSTATE = "25006"
_CANCELED_SQLSTATE = "57014"
_SYNTAX_SQLSTATE = "42601"


#: Statements READ ONLY lets through that act outside the transaction (a file, a program, a
#: procedure or block of code, a shared library, a checkpoint).
_ACTING_STATEMENTS = ("copy", "do", "call", "load", "checkpoint")
#: Functions READ ONLY lets through whose effect no rollback undoes, and those that run SQL text
#: (which would hide a name from this check).
_ACTING_FUNCTIONS = re.compile(
    r"\b(pg_terminate_backend|pg_cancel_backend|pg_reload_conf|pg_rotate_logfile\w*|pg_switch_wal|"
    r"pg_switch_xlog|pg_promote|pg_wal_replay_\w+|pg_xlog_replay_\w+|pg_create_restore_point|"
    r"pg_backup_start|pg_backup_stop|pg_start_backup|pg_stop_backup|pg_log_backend_memory_contexts|"
    r"pg_stat_reset\w*|pg_stat_statements_reset|pg_(?:create|drop|copy)_\w*replication_slot|"
    r"pg_replication_slot_advance|pg_logical_slot_\w+|pg_logical_emit_message|pg_replication_origin_\w+|"
    r"pg_import_system_collations|pg_file_(?:write|rename|unlink|sync)|"
    r"lo_export|lo_import|dblink\w*|query_to_xml\w*|cursor_to_xml\w*|ts_stat)\b"
)
_COMMENTS = re.compile(r"--[^\n]*|/\*.*?\*/", re.DOTALL)
_READ_ONLY_HINT = "connect with a role that has only SELECT to make this a guarantee"


class QueryError(RestatePgError):
    """The query is not valid SQL, names something unknown, tries to write, or ran too long."""


@dataclass(frozen=True)
class QueryResult:
    columns: typing.List[str]
    rows: typing.List[typing.Tuple[typing.Any, ...]]

    def records(self) -> typing.List[typing.Dict[str, typing.Any]]:
        """The rows as `{column: JSON-safe value}`; a repeated column name keeps its last value."""
        return [{name: json_safe(value) for name, value in zip(self.columns, row)} for row in self.rows]


def run_query(
    url: str,
    schema: str,
    query: str,
    params: typing.Optional[typing.Mapping[str, typing.Any]] = None,
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> QueryResult:
    """Run `query` (with `params` for its `%(name)s` placeholders, if any) read-only against
    `url`, with `schema`'s views first on the search_path.

    Raises `QueryError` for a query the operator has to fix, `DatabaseUnavailable` when
    PostgreSQL cannot be reached or goes away.
    """
    if not query.strip():
        raise QueryError("the query is empty")
    refuse_side_effects(query)
    with connect(url, timeout=min(timeout_s, 10.0)) as conn:
        conn.read_only = True
        try:
            conn.execute(
                Queries(schema).SCOPE_OPERATOR_QUERY, {"timeout_ms": str(max(1, int(timeout_s * 1000)))}
            )
            cursor = conn.execute(query, params, prepare=True)
            columns = [column.name for column in cursor.description or []]
            rows = cursor.fetchall() if cursor.description else []
        except psycopg.Error as exc:
            raise _classify(exc, timeout_s) from exc
        finally:
            with contextlib.suppress(psycopg.Error):  # nothing it did is kept; a lost connection has nothing to undo
                conn.rollback()
    return QueryResult(columns, rows)


def refuse_side_effects(query: str) -> None:
    """Raise `QueryError` when `query` is a statement, or names a function, that READ ONLY lets
    through and whose effect outlives the transaction (see the module's docstring: a guard against
    mistakes, by name, not a security boundary). Quoted, schema-qualified and upper-case names
    are names too; a Unicode-escaped identifier (`U&"..."`), which could spell one, is refused."""
    text = query.lower().replace('"', "")
    first = _COMMENTS.sub(" ", text).lstrip(" \t\r\n(").split(None, 1)
    if first and first[0] in _ACTING_STATEMENTS:
        raise QueryError(f"queries are read-only: {first[0].upper()} is not run here ({_READ_ONLY_HINT})")
    found = _ACTING_FUNCTIONS.search(text)
    if found is not None:
        raise QueryError(
            f"queries are read-only: {found.group(1)}() acts outside the transaction and is not run here "
            f"({_READ_ONLY_HINT})"
        )
    if 'u&"' in query.lower():
        raise QueryError("queries are read-only: Unicode-escaped identifiers (U&\"...\") are not run here")


def _classify(exc: psycopg.Error, timeout_s: float) -> RestatePgError:
    state = exc.sqlstate or ""
    message = _first_line(exc)
    if state == _READ_ONLY_SQLSTATE:
        return QueryError(f"queries are read-only: {message}")
    if state == _CANCELED_SQLSTATE:
        return QueryError(f"the query ran longer than {timeout_s:g}s and was cancelled")
    if state == _SYNTAX_SQLSTATE and "multiple commands" in message:
        return QueryError("send one statement at a time: a query is a single SELECT (or WITH, VALUES, ...)")
    if not state or state.startswith(UNAVAILABLE_CLASSES):  # the server, not the query, is the problem
        return DatabaseUnavailable(f"the database went away during the query: {message}")
    return QueryError(message)


def _first_line(exc: psycopg.Error) -> str:
    primary = exc.diag.message_primary if exc.diag is not None else None
    text = (primary or str(exc)).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def json_safe(value: typing.Any) -> typing.Any:
    """`value` as JSON can carry it: bytes as base64, times in ISO 8601, intervals as `PT<s>S`."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    if isinstance(value, timedelta):
        return "PT" + f"{value.total_seconds():f}".rstrip("0").rstrip(".") + "S"
    if isinstance(value, Decimal):
        return int(value) if value.is_finite() and value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return str(value)
