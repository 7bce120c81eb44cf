"""One statement sent through libpq itself: the write path's `apply()`, without a cursor.

Every commit of the hot path is the same statement with one JSON argument, answering one row of
text. A psycopg cursor around it (query conversion, the prepared-statement cache, the result's
description, a row factory) cost about as much Python time as the commit's round trip itself
(W1: 60 µs of ~125 µs per commit, four commits per call). Here the statement is prepared once per
connection under a fixed name and run with `send_query_prepared`, through psycopg's own wait loop
(`AsyncConnection.wait`), so that cancellation, connection loss and notifications behave as with
a cursor, and errors are psycopg's (`error_from_result`).

Nothing tracks which connections hold the statement: a connection that lacks it (new, or after
psycopg's `DEALLOCATE ALL`, which it sends after a ROLLBACK on a connection with prepared
statements) answers `26000`, nothing having run, and is given it then. A connection configured not
to prepare (`prepare_threshold=None`, for a pooler that cannot keep them) gets the statement as
text every time.
"""

from __future__ import annotations

import typing

import psycopg
from psycopg import errors, generators, pq

__all__ = ["PreparedCall"]

_INVALID_STATEMENT_NAME = "26000"


class PreparedCall:
    """A statement of one text parameter answering one row, run on connections it is handed."""

    __slots__ = ("_name", "_sql")

    def __init__(self, name: str, sql: str) -> None:
        self._name = name.encode()
        self._sql = sql.encode()

    async def row(self, conn: psycopg.AsyncConnection[typing.Any], param: bytes) -> typing.List[typing.Optional[bytes]]:
        """The answer's one row, each value as PostgreSQL's text (None for NULL). The statement is
        its own transaction: `conn` must be in autocommit (psycopg would open one first)."""
        if not conn.autocommit:
            raise errors.ProgrammingError("PreparedCall runs on autocommit connections only")
        async with conn.lock:
            pgconn = conn.pgconn
            if conn.prepare_threshold is None:
                pgconn.send_query_params(self._sql, [param])
                result = await _result(conn)
            else:
                pgconn.send_query_prepared(self._name, [param])
                result = await _result(conn)
                if result.status == pq.ExecStatus.FATAL_ERROR and _sqlstate(result) == _INVALID_STATEMENT_NAME:
                    pgconn.send_prepare(self._name, self._sql)
                    _check(conn, await _result(conn), pq.ExecStatus.COMMAND_OK)
                    pgconn.send_query_prepared(self._name, [param])
                    result = await _result(conn)
        _check(conn, result, pq.ExecStatus.TUPLES_OK)
        if result.ntuples != 1:
            raise errors.ProgrammingError(f"expected one row, got {result.ntuples}")
        return [result.get_value(0, column) for column in range(result.nfields)]


async def _result(conn: psycopg.AsyncConnection[typing.Any]) -> pq.abc.PGresult:
    """The last result of what was sent (libpq answers one per statement, here one)."""
    results = await conn.wait(generators.execute(conn.pgconn))
    return results[-1]


def _sqlstate(result: pq.abc.PGresult) -> typing.Optional[str]:
    code = result.error_field(pq.DiagnosticField.SQLSTATE)
    return code.decode() if code is not None else None


def _check(conn: psycopg.AsyncConnection[typing.Any], result: pq.abc.PGresult, expected: pq.ExecStatus) -> None:
    if result.status != expected:
        if result.status == pq.ExecStatus.FATAL_ERROR:
            raise errors.error_from_result(result, encoding=conn.info.encoding)
        raise errors.InternalError(f"unexpected result {pq.ExecStatus(result.status).name}")
