"""A pooled connection that one writer keeps between its transactions.

Each lane of the group committer (store/group_commit.py: the group in flight, the completion
that hands a key over, the submissions beside them) sends one transaction at a time, back to
back. Taken from the pool for each, a lane's transactions met a different PostgreSQL backend
almost every time (psycopg_pool hands its idle connections out in turn) and paid the pool's
bookkeeping each time. A lane now keeps the connection it last used: one backend, warm, per
lane, and one attribute check per transaction. Measured with the TypeScript endpoint, four
interleaved pairs on one host: W3 on one key +10 % in every pair (the chain of key hand-overs
runs through the express lane's connection), W1 +10 %; throughput workloads level.

What the pool still decides: a connection that failed under a statement goes back to the pool,
which drops it if it is broken, and the lane takes another from the pool for its next
transaction (waiting at most `FAIL_FAST_S` while the database is known to be down, as any
request does, see store/availability.py); a connection held for `HOLD_S` goes back after its
current transaction, so that the pool's own rules (`max_lifetime`, its health checks) keep
applying to it. A use that overlaps another (not done by the committer, but cheap to allow) takes
a connection from the pool for itself. A lane idle for `HOLD_S` gives its connection back when
the process's housekeeping asks (`release_if_idle`), so that an idle process keeps no more
connections than before. A pool too small to spare a connection per lane is used as before, a
connection per transaction (`HeldConnection(hold=False)`).
"""

from __future__ import annotations

import time
import typing

import psycopg
from psycopg import pq

from restate_pg.store.availability import FAIL_FAST_S, Availability

__all__ = ["HOLD_S", "MIN_POOL_TO_HOLD", "HeldConnection"]

#: How long a lane keeps one connection before it lets the pool have it back.
HOLD_S = 60.0

#: The smallest pool whose lanes keep connections: three kept (the group in flight's, the express
#: completions', the submissions beside them), at least as many left for reads, claims and operators.
MIN_POOL_TO_HOLD = 6

_IDLE = pq.TransactionStatus.IDLE


class HeldConnection:
    """The connections of one lane: `async with held() as conn`, one use at a time."""

    def __init__(self, availability: Availability, *, hold: bool = True, hold_s: float = HOLD_S) -> None:
        self._availability = availability
        self._hold = hold
        self._hold_s = hold_s
        self._conn: typing.Optional[psycopg.AsyncConnection[typing.Any]] = None
        self._since = 0.0
        self._used_at = 0.0
        self._in_use = False

    @property
    def held(self) -> typing.Optional[psycopg.AsyncConnection[typing.Any]]:
        """The connection kept for the next use, if any."""
        return self._conn

    def __call__(self) -> "_HeldUse":
        return _HeldUse(self)

    async def release(self) -> None:
        """Give the kept connection back to the pool (before the pool closes)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            await self._availability.pool.putconn(conn)

    async def release_if_idle(self, idle_s: float = HOLD_S) -> None:
        """Give the kept connection back if no use ended for `idle_s`: an idle process keeps no
        more connections than its pool's minimum (the housekeeping asks, services/gateway.py)."""
        if self._conn is not None and not self._in_use and time.monotonic() - self._used_at >= idle_s:
            await self.release()

    async def _take(self) -> typing.Tuple[psycopg.AsyncConnection[typing.Any], bool]:
        """A connection for one use, and whether it is the lane's (else only this use's)."""
        if self._in_use or not self._hold:
            return await self._from_pool(), False
        self._in_use = True
        conn = self._conn
        if conn is not None and (conn.closed or conn.pgconn.transaction_status != _IDLE):
            self._conn = None  # broken while kept: the pool decides what becomes of it
            await self._give_back(conn)
            conn = None
        if conn is None:
            try:
                conn = await self._from_pool()
            except BaseException:
                self._in_use = False
                raise
            self._conn, self._since = conn, time.monotonic()
        return conn, True

    async def _from_pool(self) -> psycopg.AsyncConnection[typing.Any]:
        availability = self._availability
        try:
            return await availability.pool.getconn(FAIL_FAST_S if availability.down else None)
        except BaseException as exc:
            availability.noticed(exc)
            raise

    async def _done(self, conn: psycopg.AsyncConnection[typing.Any], kept: bool,
                    exc: typing.Optional[BaseException]) -> None:
        """After a use: keep the lane's connection, unless the use failed or it was kept long
        enough; give any other back to the pool."""
        availability = self._availability
        if kept:
            self._in_use = False
            self._used_at = time.monotonic()
            if exc is None and time.monotonic() - self._since < self._hold_s:
                availability.down = False
                return
            self._conn = None
        try:
            await availability.pool.putconn(conn)
        except BaseException as failure:
            availability.noticed(failure)
            raise
        if exc is None:
            availability.down = False
        else:
            availability.noticed(exc)

    async def _give_back(self, conn: psycopg.AsyncConnection[typing.Any]) -> None:
        try:
            await self._availability.pool.putconn(conn)
        except Exception as exc:  # it was unusable anyway; the use goes on with another
            self._availability.noticed(exc)


class _HeldUse:
    """One use of a `HeldConnection`. A class, not an async generator: every write goes through it."""

    __slots__ = ("_held", "_conn", "_kept")

    def __init__(self, held: HeldConnection) -> None:
        self._held = held
        self._conn: typing.Optional[psycopg.AsyncConnection[typing.Any]] = None
        self._kept = False

    async def __aenter__(self) -> psycopg.AsyncConnection[typing.Any]:
        self._conn, self._kept = await self._held._take()
        return self._conn

    async def __aexit__(self, exc_type: typing.Any, exc: typing.Optional[BaseException], tb: typing.Any) -> None:
        assert self._conn is not None
        await self._held._done(self._conn, self._kept, exc)
