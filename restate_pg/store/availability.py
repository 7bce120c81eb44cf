"""Failing fast while PostgreSQL is down, and noticing at once when it is back.

psycopg_pool's defaults suit a database that is up: a request waits up to 30 s for a pooled
connection, and a connection attempt that fails is retried with an exponential backoff for up to
five minutes. With the database down, that made every endpoint (`/health` too) answer 503 after
30 s, and the first request after the database came back wait for the next retry of the backoff
(20 s and more). Here:

- every connection is opened with a bounded `connect_timeout` (`bounded`), so that an unreachable
  host does not hang a connection attempt for the operating system's TCP timeout;
- the pool gives up a failed connection attempt after `RECONNECT_S` (`reconnect_timeout`): the
  next request that needs a connection asks for a new one at once, so that once the database is
  back the next request connects, instead of waiting for a backoff retry scheduled long before;
- once a connection to the database failed (`Availability.down`), a request waits at most
  `FAIL_FAST_S` for a pooled connection, and answers 503 (`StoreUnavailable`) after that; the
  first request that works again restores the pool's ordinary wait.

While the database is up nothing changes: the pool's ordinary wait, one attribute read per request.
"""

from __future__ import annotations

import os
import typing

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg_pool import AsyncConnectionPool

from restate_pg.core.errors import StoreUnavailable
from restate_pg.store.errors import translate

__all__ = ["CONNECT_TIMEOUT_S", "FAIL_FAST_S", "HEALTH_TIMEOUT_S", "RECONNECT_S", "Availability", "bounded"]

#: libpq's `connect_timeout` of every connection the store opens, unless the URL (or
#: `PGCONNECT_TIMEOUT`) sets one: whole seconds, and libpq waits at least two.
CONNECT_TIMEOUT_S = 5
#: How long the pool keeps retrying a failed connection attempt before it gives that one up (the
#: next request asks again, at once).
RECONNECT_S = 1.0
#: How long a request waits for a pooled connection once the database was found down.
FAIL_FAST_S = 0.5
#: How long `/health` and `/restate/health` wait for the database's answer.
HEALTH_TIMEOUT_S = 1.0


def bounded(conninfo: str) -> str:
    """`conninfo` with `connect_timeout=CONNECT_TIMEOUT_S`, unless it (or the environment) has one
    or it cannot be read (connecting will say what is wrong)."""
    try:
        if "connect_timeout" in conninfo_to_dict(conninfo) or os.environ.get("PGCONNECT_TIMEOUT"):
            return conninfo
        return make_conninfo(conninfo, connect_timeout=CONNECT_TIMEOUT_S)
    except psycopg.ProgrammingError:
        return conninfo


class Availability:
    """The pool's connections, with a short wait while the database is known to be down."""

    def __init__(self, pool: AsyncConnectionPool) -> None:
        self.pool = pool
        #: Whether the last connection (or the last statement on one) failed for want of the server.
        self.down = False

    def connection(self) -> "AvailableConnection":
        """A pooled connection (`async with`); a `StoreUnavailable` (translated by the caller)
        marks the database down, the end of a block that used a connection without one marks it up."""
        return AvailableConnection(self)

    def noticed(self, exc: BaseException) -> None:
        """Mark the database down if `exc` says it is unreachable."""
        if isinstance(exc, psycopg.Error) and isinstance(translate(exc), StoreUnavailable):
            self.down = True


class AvailableConnection:
    """The context of `Availability.connection()`. A class, not an async generator: every
    statement of the hot path goes through it."""

    __slots__ = ("_availability", "_context")

    def __init__(self, availability: Availability) -> None:
        self._availability = availability
        self._context = availability.pool.connection(FAIL_FAST_S if availability.down else None)

    async def __aenter__(self) -> psycopg.AsyncConnection[typing.Any]:
        try:
            return await self._context.__aenter__()
        except BaseException as exc:
            self._availability.noticed(exc)
            raise

    async def __aexit__(self, exc_type: typing.Any, exc: typing.Optional[BaseException], tb: typing.Any) -> None:
        try:
            await self._context.__aexit__(exc_type, exc, tb)
        except BaseException as failure:
            self._availability.noticed(failure)
            raise
        if exc is None:
            self._availability.down = False
        else:
            self._availability.noticed(exc)
