"""Connections the application owns: running one statement in their current transaction, and
opening one for a database step.

Supported: SQLAlchemy's `Session` and `Connection` and their asyncio versions, psycopg 3's
`Connection` and `AsyncConnection`, and any DB-API connection with `.cursor()` taking
`%(name)s` parameters (Django's `connection`, psycopg2). Nothing in `execute` commits: the
statement belongs to whatever transaction the connection is in (or begins one, as the driver
does). A database step without a session of the application's runs on a psycopg connection of
its own (`step_transaction`), whose driver calls are kept here, beside the store's others; the
step's logic is the runtime's (`runtime/transaction.py`).
"""

from __future__ import annotations

import contextlib
import re
import typing

import psycopg

Params = typing.Mapping[str, typing.Any]
Row = typing.Sequence[typing.Any]

_PYFORMAT = re.compile(r"%\((\w+)\)s")


def _sqlalchemy_module(conn: typing.Any) -> typing.Optional[str]:
    """The SQLAlchemy module `conn`'s class (or the SQLAlchemy class it derives from) is from."""
    return next((c.__module__ for c in type(conn).__mro__ if c.__module__.startswith("sqlalchemy.")), None)


def is_sqlalchemy(conn: typing.Any) -> bool:
    return _sqlalchemy_module(conn) is not None


def is_sqlalchemy_async(conn: typing.Any) -> bool:
    return ".asyncio" in (_sqlalchemy_module(conn) or "")


def _sqlalchemy_text(sql: str) -> typing.Any:
    """The statement with SQLAlchemy's `:name` parameters, which it renders for any driver."""
    from sqlalchemy import text

    return text(_PYFORMAT.sub(r":\1", sql))


def execute(conn: typing.Any, sql: str, params: Params) -> Row:
    """The one row `sql` returns, run on a synchronous connection."""
    if isinstance(conn, psycopg.AsyncConnection) or is_sqlalchemy_async(conn):
        raise TypeError(f"{type(conn).__name__} is asynchronous: use the async variant (enqueue_async)")
    if is_sqlalchemy(conn):
        return tuple(conn.execute(_sqlalchemy_text(sql), dict(params)).one())
    if isinstance(conn, psycopg.Connection):
        row = conn.execute(sql, params).fetchone()
    elif callable(getattr(conn, "cursor", None)):
        cursor = conn.cursor()
        try:
            cursor.execute(sql, params)
            row = cursor.fetchone()
        finally:
            cursor.close()
    else:
        raise TypeError(f"cannot run statements on {type(conn).__name__}: pass a SQLAlchemy Session or "
                        "Connection, a psycopg connection, or a DB-API connection")
    assert row is not None
    return tuple(row)


async def execute_async(conn: typing.Any, sql: str, params: Params) -> Row:
    """The one row `sql` returns, run on an asynchronous connection."""
    if is_sqlalchemy_async(conn):
        return tuple((await conn.execute(_sqlalchemy_text(sql), dict(params))).one())
    if isinstance(conn, psycopg.AsyncConnection):
        row = await (await conn.execute(sql, params)).fetchone()
        assert row is not None
        return tuple(row)
    raise TypeError(f"cannot run statements asynchronously on {type(conn).__name__}: pass a SQLAlchemy "
                    "AsyncSession or AsyncConnection, or a psycopg AsyncConnection (else use enqueue)")


@contextlib.asynccontextmanager
async def step_transaction_async(conninfo: str) -> typing.AsyncIterator[typing.Any]:
    """A transaction on a psycopg connection of its own (not the worker's pool, whose
    connections must stay free for heartbeats and flushes however long actions take)."""
    async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn:
        async with conn.transaction():
            yield conn


@contextlib.contextmanager
def step_transaction(conninfo: str) -> typing.Iterator[typing.Any]:
    """`step_transaction_async` for a plain function, run whole on one thread."""
    with psycopg.connect(conninfo, autocommit=True) as conn, conn.transaction():
        yield conn


def savepoint(conn: typing.Any) -> typing.Any:
    """A savepoint on a connection of `step_transaction(_async)`, released on success, rolled back on error."""
    return conn.transaction()
