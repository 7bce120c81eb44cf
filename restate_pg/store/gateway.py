"""The ways the store talks to PostgreSQL, shared by every part of `Store`, with the errors translated.

A single read or housekeeping statement is sent prepared, in autocommit (`rows`, `first`,
`scalar`); a transaction of several statements is sent as one multi-statement message, which
PostgreSQL runs as one implicit transaction (all or nothing, locks held to its end:
`transaction`); a request of the server-side `apply()` shares its transaction and commit with
concurrent ones (`apply`, through `group_commit`). Measured here, one message is 3-4x cheaper than
psycopg's pipeline mode. Rows come back as dicts, read by column name.

Every way out of here goes through `store.errors.translated`, so that what the parts above see is
`core.errors`' vocabulary, never psycopg's.
"""

from __future__ import annotations

import asyncio
import typing

import psycopg
from psycopg import AsyncClientCursor
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from restate_pg.store.availability import HEALTH_TIMEOUT_S, Availability
from restate_pg.store.codec import Request
from restate_pg.core.errors import StoreUnavailable
from restate_pg.store.errors import raise_translated, translated
from restate_pg.store.faults import FaultPlan, statement_name
from restate_pg.store.group_commit import Applied, GroupCommitter
from restate_pg.store.held_connection import MIN_POOL_TO_HOLD, HeldConnection
from restate_pg.store.queries import Queries
from restate_pg.store.rows import Columns, Row, named_rows

Params = typing.Mapping[str, typing.Any]
Statement = typing.Tuple[str, Params]


class Gateway:
    """A pool of connections to one schema, the statements of that schema, and the group committer."""

    def __init__(
        self,
        pool: AsyncConnectionPool,
        queries: Queries,
        conninfo: str,
        faults: typing.Optional[FaultPlan] = None,
    ) -> None:
        self.pool = pool
        self.q = queries
        self.conninfo = conninfo
        self.faults = faults
        #: The pool's connections, failing fast while the database is down (store/availability.py).
        self.availability = Availability(pool)
        #: Each lane of the group committer keeps a connection (store/held_connection.py) when the
        #: pool can spare one per lane and still serve reads.
        hold = pool.max_size >= MIN_POOL_TO_HOLD
        self.committer = GroupCommitter(lambda: HeldConnection(self.availability, hold=hold), queries.APPLY, faults=faults)
        self._own: typing.Optional[psycopg.AsyncConnection[typing.Any]] = None

    async def close(self) -> None:
        await self.committer.release()
        if self._own is not None:
            await self._own.close()
            self._own = None
        await self.pool.close()

    def connection(self) -> "_PooledConnection":
        """A pooled connection (autocommit), for a transaction the caller drives; errors
        translated once the pool has seen the driver's (and dropped a broken connection)."""
        return _PooledConnection(self.availability)

    async def check_health(self, timeout_s: float = HEALTH_TIMEOUT_S) -> None:
        """Raise `StoreUnavailable` unless the database answers a query within `timeout_s` (the
        health endpoints: a liveness probe must get its answer in time, whatever it is)."""
        try:
            await asyncio.wait_for(self.scalar(self.q.DB_NOW, {}), timeout_s)
        except asyncio.TimeoutError:
            raise StoreUnavailable(f"the database did not answer within {timeout_s:g}s") from None

    def _check(self, sql: str, when: str) -> None:
        if self.faults is not None:
            self.faults.check(statement_name(sql), when)

    async def rows(self, sql: str, params: Params, columns: Columns = None) -> typing.List[Row]:
        """The rows of one statement, prepared, in its own (autocommit) transaction."""
        self._check(sql, "before")
        async with self.connection() as conn:
            cur = conn.cursor(row_factory=named_rows(columns))
            await cur.execute(sql, params)
            rows = await cur.fetchall() if cur.description is not None else []
        self._check(sql, "after")
        return rows

    async def first(self, sql: str, params: Params, columns: Columns = None) -> typing.Optional[Row]:
        """The first row of one statement (None if it returns none)."""
        rows = await self.rows(sql, params, columns)
        return rows[0] if rows else None

    async def scalar(self, sql: str, params: Params) -> typing.Any:
        """The only value of a statement that returns one (None if it returns no row)."""
        rows = await self.rows(sql, params, ("value",))
        return rows[0]["value"] if rows else None

    async def execute(self, sql: str, params: Params) -> bool:
        """Run one statement; whether it returned (or changed) a row."""
        return bool(await self.rows(sql, params))

    async def transaction(
        self, statements: typing.Sequence[Statement], columns: typing.Mapping[int, Columns] = {}
    ) -> typing.List[typing.Optional[typing.List[Row]]]:
        """Several statements as one implicit transaction, in one round trip; the rows of each
        (None for a statement that returns none), named by `columns[i]` for a statement `i`
        that leaves its columns unnamed."""
        for sql, _ in statements:
            self._check(sql, "before")
        async with self.connection() as conn:
            cur = AsyncClientCursor(conn, row_factory=dict_row)
            await cur.execute(";\n".join(cur.mogrify(sql, params) for sql, params in statements))
            results: typing.List[typing.Optional[typing.List[Row]]] = []
            while True:
                cur.row_factory = named_rows(columns.get(len(results)))
                results.append(await cur.fetchall() if cur.description is not None else None)
                cur.row_factory = dict_row  # what nextset() makes the next result's rows with
                if not cur.nextset():
                    break
        for sql, _ in statements:
            self._check(sql, "after")
        return results

    async def apply(self, request: Request) -> Applied:
        """One request of the server-side `apply()`, committed with concurrent ones (group commit)."""
        with translated():
            return await self.committer.run(typing.cast("typing.Dict[str, typing.Any]", request))

    async def own_connection(self) -> psycopg.AsyncConnection[typing.Any]:
        """A connection outside the pool, kept for the next call (the heartbeat's: a worker's
        liveness must not wait for a free pool connection, nor for any statement of its own
        that waits on another worker's locks)."""
        conn = self._own
        if conn is None or conn.closed:
            with translated():
                conn = self._own = await psycopg.AsyncConnection.connect(
                    self.conninfo, autocommit=True, connect_timeout=10)
        return conn

    async def drop_own_connection(self) -> None:
        """Forget the connection of `own_connection` (it broke): the next call opens another."""
        conn, self._own = self._own, None
        if conn is not None:
            await conn.close()


class _PooledConnection:
    """`async with gateway.connection() as conn`: a connection of `Availability` (which notes
    whether the database answers), with errors translated after the pool has seen them. A class,
    not an async generator: every statement of the hot path goes through it."""

    __slots__ = ("_context",)

    def __init__(self, availability: Availability) -> None:
        self._context = availability.connection()

    async def __aenter__(self) -> psycopg.AsyncConnection[typing.Any]:
        with translated():
            return await self._context.__aenter__()

    async def __aexit__(self, exc_type: typing.Any, exc: typing.Optional[BaseException], tb: typing.Any) -> None:
        with translated():
            await self._context.__aexit__(exc_type, exc, tb)
        if exc is not None:
            raise_translated(exc)  # else the block's own error propagates as it is


class StorePart:
    """One concern of `Store` (invocations, workers, ...): its methods run their statements
    through the gateway the parts share, so that each part can also be used on its own."""

    def __init__(self, db: Gateway) -> None:
        self._db = db
