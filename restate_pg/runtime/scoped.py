"""`ctx.scope(name)`: restate-sdk's `ScopedContext`: calls and sends in a scope, with a limit key.

The invocations it starts carry the scope and limit key, which the flow-control rules match
(docs/flow-control.md): their concurrency, rate and backlog limits hold for them as for scoped
requests through the ingress.
"""

from __future__ import annotations

import typing
from datetime import timedelta

from restate_pg.api.context import HandlerType, RestateDurableCallFuture, ScopedContext, SendHandle
from restate_pg.api.flow import FlowOptions, check_scope

if typing.TYPE_CHECKING:
    from restate_pg.runtime.calls import CallCommands

Headers = typing.Optional[typing.Dict[str, str]]

__all__ = ["FlowScope", "check_scope"]


class FlowScope(ScopedContext):
    def __init__(self, ctx: "CallCommands", scope: str) -> None:
        self._ctx = ctx
        self.scope = check_scope(scope)

    def _flow(self, limit_key: typing.Optional[str]) -> FlowOptions:
        return FlowOptions(self.scope, limit_key)

    def service_call(self, tpe: HandlerType, arg: typing.Any, limit_key: typing.Optional[str] = None,
                     idempotency_key: typing.Optional[str] = None, headers: Headers = None) -> RestateDurableCallFuture[typing.Any]:
        return self._ctx._call(tpe, None, arg, idempotency_key, headers, self._flow(limit_key))

    def service_send(self, tpe: HandlerType, arg: typing.Any, send_delay: typing.Optional[timedelta] = None,
                     limit_key: typing.Optional[str] = None, idempotency_key: typing.Optional[str] = None,
                     headers: Headers = None) -> SendHandle:
        return self._ctx._send(tpe, None, arg, send_delay, idempotency_key, headers, self._flow(limit_key))

    def object_call(self, tpe: HandlerType, key: str, arg: typing.Any, limit_key: typing.Optional[str] = None,
                    idempotency_key: typing.Optional[str] = None, headers: Headers = None) -> RestateDurableCallFuture[typing.Any]:
        return self._ctx._call(tpe, key, arg, idempotency_key, headers, self._flow(limit_key))

    def object_send(self, tpe: HandlerType, key: str, arg: typing.Any, send_delay: typing.Optional[timedelta] = None,
                    limit_key: typing.Optional[str] = None, idempotency_key: typing.Optional[str] = None,
                    headers: Headers = None) -> SendHandle:
        return self._ctx._send(tpe, key, arg, send_delay, idempotency_key, headers, self._flow(limit_key))

    def workflow_call(self, tpe: HandlerType, key: str, arg: typing.Any, limit_key: typing.Optional[str] = None,
                      idempotency_key: typing.Optional[str] = None, headers: Headers = None) -> RestateDurableCallFuture[typing.Any]:
        return self._ctx._call(tpe, key, arg, idempotency_key, headers, self._flow(limit_key))

    def workflow_send(self, tpe: HandlerType, key: str, arg: typing.Any, send_delay: typing.Optional[timedelta] = None,
                      limit_key: typing.Optional[str] = None, idempotency_key: typing.Optional[str] = None,
                      headers: Headers = None) -> SendHandle:
        return self._ctx._send(tpe, key, arg, send_delay, idempotency_key, headers, self._flow(limit_key))
