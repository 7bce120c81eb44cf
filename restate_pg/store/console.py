"""Operators' SQL: one read-only query, answered with JSON-safe rows.

Shared by the admin API's `POST /query` and `restate-pg sql`. Each query gets a connection of its
own, so that nothing it sets outlives it, and runs in a READ ONLY transaction that is rolled back,
under a statement timeout, with restate-pg's schema first on the search_path so that queries
written for `restate sql` (`SELECT * FROM sys_invocation`) run unqualified while the application's
own tables still resolve. The query is sent as a prepared statement: PostgreSQL then refuses more
than one statement in the string, so `COMMIT; DELETE ...` cannot step out of the transaction.
"""

from __future__ import annotations

import base64
import contextlib
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
