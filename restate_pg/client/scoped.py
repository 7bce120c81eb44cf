"""`client.scope(name)`: restate-sdk 1.3's `RestateScopedClient`, calls and sends in a scope.

Each request carries the scope and, if given, a limit key, which flow-control rules match
(docs/flow-control.md); over HTTP they become Restate's `/restate/scope/{scope}/call|send/...`
path and `x-restate-limit-key` header, over SQL the submission's columns. A scope partitions
identity as in Restate: the same idempotency key or workflow id in another scope is another
invocation. The limit key is not part of identity.
"""

from __future__ import annotations

import typing
from datetime import timedelta

from restate_pg.api.errors import TerminalError
from restate_pg.client.handle import RestateClientSendHandle
from restate_pg.client.target import TargetLike
from restate_pg.api.flow import FlowOptions

if typing.TYPE_CHECKING:
    from restate_pg.client.base import RestateClient

Headers = typing.Optional[typing.Dict[str, str]]


def flow_of(scope: typing.Optional[str], limit_key: typing.Optional[str], priority: int = 0) -> typing.Optional[FlowOptions]:
    """A request's scope, limit key and priority, checked as the ingress checks them: a ValueError
    before anything is sent or written. Scoped requests from clients may be refused by a full backlog."""
    if scope is None and limit_key is None and priority == 0:
        return None
    try:
        return FlowOptions(scope, limit_key, priority, check_backlog=True)  # a scope or target rule may refuse it
    except TerminalError as exc:
        raise ValueError(exc.message) from None


class RestateScopedClient:
    """The six typed methods of `RestateClient`, in one scope, each with a `limit_key`."""

    def __init__(self, client: "RestateClient", scope: str) -> None:
        self.client = client
        self.scope = scope

    async def _call(self, tpe: TargetLike, key: typing.Optional[str], arg: typing.Any, limit_key: typing.Optional[str],
                    idempotency_key: typing.Optional[str], headers: Headers) -> typing.Any:
        return await self.client._typed_call(tpe, key, arg, idempotency_key, headers, flow_of(self.scope, limit_key))

    async def _send(self, tpe: TargetLike, key: typing.Optional[str], arg: typing.Any, send_delay: typing.Optional[timedelta],
                    limit_key: typing.Optional[str], idempotency_key: typing.Optional[str], headers: Headers) -> RestateClientSendHandle:
        return await self.client._typed_send(tpe, key, arg, send_delay, idempotency_key, headers, flow_of(self.scope, limit_key))

    async def service_call(self, tpe: TargetLike, arg: typing.Any = None, limit_key: typing.Optional[str] = None,
                           idempotency_key: typing.Optional[str] = None, headers: Headers = None) -> typing.Any:
        """Call a service's handler in this scope and wait for its result."""
        return await self._call(tpe, None, arg, limit_key, idempotency_key, headers)

    async def service_send(self, tpe: TargetLike, arg: typing.Any = None, send_delay: typing.Optional[timedelta] = None,
                           limit_key: typing.Optional[str] = None, idempotency_key: typing.Optional[str] = None,
                           headers: Headers = None) -> RestateClientSendHandle:
        return await self._send(tpe, None, arg, send_delay, limit_key, idempotency_key, headers)

    async def object_call(self, tpe: TargetLike, key: str, arg: typing.Any = None, limit_key: typing.Optional[str] = None,
                          idempotency_key: typing.Optional[str] = None, headers: Headers = None) -> typing.Any:
        return await self._call(tpe, key, arg, limit_key, idempotency_key, headers)

    async def object_send(self, tpe: TargetLike, key: str, arg: typing.Any = None, send_delay: typing.Optional[timedelta] = None,
                          limit_key: typing.Optional[str] = None, idempotency_key: typing.Optional[str] = None,
                          headers: Headers = None) -> RestateClientSendHandle:
        return await self._send(tpe, key, arg, send_delay, limit_key, idempotency_key, headers)

    #: A workflow's handlers take its key as an object's do: `run` starts the workflow in this scope.
    workflow_call = object_call
    workflow_send = object_send
