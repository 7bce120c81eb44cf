"""The context of the handler running in the current asyncio task (`restate.extensions.current_context`).

Set for the duration of an attempt by `runtime/attempt.py`; tasks the handler starts inherit it.
"""

from __future__ import annotations

import contextvars
import typing

from restate_pg.api.context import Context

_CURRENT: contextvars.ContextVar[typing.Optional[Context]] = contextvars.ContextVar("restate_pg_context", default=None)


def current_context() -> typing.Optional[Context]:
    """The running handler's context, or None outside a handler."""
    return _CURRENT.get()


def enter(ctx: Context) -> contextvars.Token[typing.Optional[Context]]:
    return _CURRENT.set(ctx)


def leave(token: contextvars.Token[typing.Optional[Context]]) -> None:
    _CURRENT.reset(token)
