"""`ctx.scope(name)`: restate-sdk's `ScopedContext`, passed through to the plain calls.

Restate's flow control (a preview in restate-server 1.7) places scoped invocations together and
limits their concurrency per limit key. restate-pg has no flow control yet, so a scoped call is
the same call as without the scope; the names exist so that code written for it runs unchanged.
"""

from __future__ import annotations

import typing
from datetime import timedelta

from restate_pg.api.context import HandlerType, RestateDurableCallFuture, ScopedContext, SendHandle
from restate_pg.api.errors import TerminalError

if typing.TYPE_CHECKING:
    from restate_pg.runtime.calls import CallCommands

Headers = typing.Optional[typing.Dict[str, str]]


def check_scope(scope: str) -> str:
    """Restate's rule: 1 to 36 characters of [a-zA-Z0-9_.-]; anything else is a terminal 400."""
    if not isinstance(scope, str) or not 1 <= len(scope) <= 36 or not all(c.isascii() and (c.isalnum() or c in "_.-") for c in scope):
        raise TerminalError(f"invalid scope {scope!r}: use 1 to 36 characters of [a-zA-Z0-9_.-]", 400)
    return scope


class PassThroughScope(ScopedContext):
    def __init__(self, ctx: "CallCommands", scope: str) -> None:
        self._ctx = ctx
        self.scope = check_scope(scope)

    def service_call(self, tpe: HandlerType, arg: typing.Any, limit_key: typing.Optional[str] = None,
                     idempotency_key: typing.Optional[str] = None, headers: Headers = None) -> RestateDurableCallFuture[typing.Any]:
        return self._ctx.service_call(tpe, arg, idempotency_key, headers)

    def service_send(self, tpe: HandlerType, arg: typing.Any, send_delay: typing.Optional[timedelta] = None,
                     limit_key: typing.Optional[str] = None, idempotency_key: typing.Optional[str] = None,
                     headers: Headers = None) -> SendHandle:
        return self._ctx.service_send(tpe, arg, send_delay, idempotency_key, headers)

    def object_call(self, tpe: HandlerType, key: str, arg: typing.Any, limit_key: typing.Optional[str] = None,
                    idempotency_key: typing.Optional[str] = None, headers: Headers = None) -> RestateDurableCallFuture[typing.Any]:
        return self._ctx.object_call(tpe, key, arg, idempotency_key, headers)

    def object_send(self, tpe: HandlerType, key: str, arg: typing.Any, send_delay: typing.Optional[timedelta] = None,
                    limit_key: typing.Optional[str] = None, idempotency_key: typing.Optional[str] = None,
                    headers: Headers = None) -> SendHandle:
        return self._ctx.object_send(tpe, key, arg, send_delay, idempotency_key, headers)

    def workflow_call(self, tpe: HandlerType, key: str, arg: typing.Any, limit_key: typing.Optional[str] = None,
                      idempotency_key: typing.Optional[str] = None, headers: Headers = None) -> RestateDurableCallFuture[typing.Any]:
        return self._ctx.workflow_call(tpe, key, arg, idempotency_key, headers)

    def workflow_send(self, tpe: HandlerType, key: str, arg: typing.Any, send_delay: typing.Optional[timedelta] = None,
                      limit_key: typing.Optional[str] = None, idempotency_key: typing.Optional[str] = None,
                      headers: Headers = None) -> SendHandle:
        return self._ctx.workflow_send(tpe, key, arg, send_delay, idempotency_key, headers)
