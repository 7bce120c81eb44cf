"""restate-sdk's `restate.connection`: `connect` / `with_connection` open an outbound tunnel from
the application to Restate Cloud. restate-pg has no server to tunnel to (the application's own
PostgreSQL is the whole runtime), so both raise `ConnectError` saying what to use instead."""

from __future__ import annotations

import contextlib
import typing

__all__ = ["ConnectError", "Connection", "TunnelInfo", "connect", "with_connection"]

_INSTEAD = (
    "restate-pg runs services in your own process against PostgreSQL, with no Restate server or Cloud "
    "to connect to: mount restate_pg.ingress.create_router(app, database_url=...) in your web app, or run "
    "`restate-pg dev MODULE:app` / `restate-pg serve MODULE:app`"
)


class ConnectError(Exception):
    """Raised by `connect` and `with_connection`: there is no Restate Cloud to connect to here."""


class TunnelInfo:
    """restate-sdk's description of an open tunnel; never built by restate-pg."""


class Connection:
    """restate-sdk's live tunnel; never built by restate-pg."""


@contextlib.asynccontextmanager
async def with_connection(
    app: typing.Any, *, name: typing.Optional[str] = None, key: typing.Optional[str] = None
) -> typing.AsyncIterator[Connection]:
    """Refused when entered: see the module docstring."""
    raise ConnectError(f"restate.with_connection is not available: {_INSTEAD}")
    yield Connection()  # pragma: no cover - never reached; makes this a generator


async def connect(app: typing.Any, *, name: typing.Optional[str] = None, key: typing.Optional[str] = None) -> None:
    """Refused: see the module docstring."""
    raise ConnectError(f"restate.connect is not available: {_INSTEAD}")
