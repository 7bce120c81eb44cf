"""`RestateClient`: invoking handlers from code outside handlers, whatever the transport.

The typed methods are restate-sdk's client surface (`service_call`, `object_send`, ...,
`generic_call`), plus what Restate's ingress offers around them: attaching to an invocation,
reading its output, completing awakeables, and cancelling. A transport implements the few raw
operations at the bottom, on bytes; this class does the typing and serdes once for both.
"""

from __future__ import annotations

import abc
import dataclasses
import typing
from datetime import timedelta

from restate_pg.api.app import App
from restate_pg.api.entry_codec import JournalValueCodec, decoded, encoded
from restate_pg.api.errors import TerminalError
from restate_pg.api.serde import DefaultSerde, Serde, is_json_serde, serde_for_type
from restate_pg.client.handle import RestateClientSendHandle
from restate_pg.client.scoped import RestateScopedClient, flow_of
from restate_pg.client.target import Target, TargetLike, named, resolve
from restate_pg.core.records import Failure
from restate_pg.api.flow import FlowOptions
from restate_pg.validation import check_text

O = typing.TypeVar("O")
Headers = typing.Optional[typing.Dict[str, str]]


def raise_failure(failure: Failure) -> typing.NoReturn:
    """An invocation's terminal failure, raised as the caller of a handler would see it."""
    raise TerminalError(failure.message, failure.code, failure.metadata or None)


class RestateClient(abc.ABC):
    """Calls, sends, attaches, awakeables and cancellation; use as an async context manager."""

    #: The application whose definitions give names their kinds and serdes (optional over HTTP).
    app: typing.Optional[App] = None
    #: As restate-sdk's client: encodes the input of calls and sends, decodes call results (and
    #: here attached outputs); it must be the codec of the app behind the ingress.
    journal_value_codec: typing.Optional[JournalValueCodec] = None

    # -- restate-sdk's surface ----------------------------------------------------------------

    def scope(self, scope: str) -> RestateScopedClient:
        """Calls and sends in `scope` (Restate's flow control: docs/flow-control.md), each with an
        optional limit key; an invalid scope is a ValueError."""
        flow_of(scope, None)
        return RestateScopedClient(self, scope)

    async def service_call(self, tpe: TargetLike, arg: typing.Any = None, idempotency_key: typing.Optional[str] = None, headers: Headers = None) -> typing.Any:
        """Call a service's handler and wait for its result (a failure raises `TerminalError`)."""
        return await self._typed_call(tpe, None, arg, idempotency_key, headers)

    async def object_call(self, tpe: TargetLike, key: str, arg: typing.Any = None, idempotency_key: typing.Optional[str] = None, headers: Headers = None) -> typing.Any:
        return await self._typed_call(tpe, key, arg, idempotency_key, headers)

    async def workflow_call(self, tpe: TargetLike, key: str, arg: typing.Any = None, idempotency_key: typing.Optional[str] = None, headers: Headers = None) -> typing.Any:
        """Call a workflow's handler: its `run` starts the workflow `key` (409 if started before:
        attach instead); its shared handlers query it or complete its promises."""
        return await self._typed_call(tpe, key, arg, idempotency_key, headers)

    async def service_send(self, tpe: TargetLike, arg: typing.Any = None, send_delay: typing.Optional[timedelta] = None, idempotency_key: typing.Optional[str] = None, headers: Headers = None) -> RestateClientSendHandle:
        """Start an invocation without waiting for it (after `send_delay`, if given)."""
        return await self._typed_send(tpe, None, arg, send_delay, idempotency_key, headers)

    async def object_send(self, tpe: TargetLike, key: str, arg: typing.Any = None, send_delay: typing.Optional[timedelta] = None, idempotency_key: typing.Optional[str] = None, headers: Headers = None) -> RestateClientSendHandle:
        return await self._typed_send(tpe, key, arg, send_delay, idempotency_key, headers)

    async def workflow_send(self, tpe: TargetLike, key: str, arg: typing.Any = None, send_delay: typing.Optional[timedelta] = None, idempotency_key: typing.Optional[str] = None, headers: Headers = None) -> RestateClientSendHandle:
        return await self._typed_send(tpe, key, arg, send_delay, idempotency_key, headers)

    async def generic_call(self, service: str, handler: str, arg: bytes, key: typing.Optional[str] = None, idempotency_key: typing.Optional[str] = None, headers: Headers = None,
                           scope: typing.Optional[str] = None, limit_key: typing.Optional[str] = None) -> bytes:
        """Call by names, with the input and output as raw bytes (in `scope`, with `limit_key`, if given)."""
        flow = flow_of(scope, limit_key)
        target = self._named(service, handler)
        target.check_request(key, idempotency_key, headers)
        return await self._decoded(await self._call(self._coded(target), key, self._encoded(arg), idempotency_key, headers, flow))

    async def generic_send(self, service: str, handler: str, arg: bytes, key: typing.Optional[str] = None, send_delay: typing.Optional[timedelta] = None, idempotency_key: typing.Optional[str] = None, headers: Headers = None,
                           scope: typing.Optional[str] = None, limit_key: typing.Optional[str] = None) -> RestateClientSendHandle:
        flow = flow_of(scope, limit_key)
        target = self._named(service, handler)
        target.check_request(key, idempotency_key, headers)
        return await self._send(self._coded(target), key, self._encoded(arg), send_delay, idempotency_key, headers, flow)

    # -- around invocations --------------------------------------------------------------------

    async def attach_invocation(self, invocation_id: str, type_hint: typing.Optional[typing.Type[O]] = None, serde: Serde[typing.Any] = DefaultSerde()) -> typing.Any:
        """Wait for an invocation's result (started by anyone); a failure raises `TerminalError`,
        an unknown id `ClientError` 404."""
        output = await self._attach(check_text("invocation id", invocation_id))
        return serde_for_type(type_hint, serde).deserialize(await self._decoded(output))

    async def get_output(self, invocation_id: str, type_hint: typing.Optional[typing.Type[O]] = None, serde: Serde[typing.Any] = DefaultSerde()) -> typing.Any:
        """An invocation's result if it has completed; `ClientError` 470 if it has not yet, 404 if
        it is unknown."""
        output = await self._output(check_text("invocation id", invocation_id))
        return serde_for_type(type_hint, serde).deserialize(await self._decoded(output))

    async def resolve_awakeable(self, awakeable_id: str, value: typing.Any, serde: Serde[typing.Any] = DefaultSerde()) -> None:
        """Complete an awakeable with a value (in the serde the awaiting handler expects)."""
        payload = self._encoded(serde.serialize(value))
        # sent as JSON only when it is: the ingress refuses a body that is not under a JSON content type
        plain_json = is_json_serde(serde) and self.journal_value_codec is None
        content_type = "application/json" if plain_json else "application/octet-stream"
        await self._complete_awakeable(check_text("awakeable id", awakeable_id), payload, None, content_type)

    async def reject_awakeable(self, awakeable_id: str, failure_message: str, failure_code: int = 500) -> None:
        """Fail an awakeable: the awaiting handler gets `TerminalError(failure_message, failure_code)`."""
        check_text("failure message", failure_message)  # stored as text; a value is stored as bytes
        await self._complete_awakeable(check_text("awakeable id", awakeable_id), None, Failure(failure_code, failure_message))

    async def cancel_invocation(self, invocation_id: str) -> None:
        """Ask an invocation to stop, as Restate's cancel does; `ClientError` 404 if unknown,
        409 if it has completed already."""
        await self._cancel(check_text("invocation id", invocation_id))

    # -- lifecycle --------------------------------------------------------------------------------

    async def __aenter__(self) -> "RestateClient":
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def open(self) -> None:
        """Connect (the context manager does it; other methods do it on first use)."""

    @abc.abstractmethod
    async def close(self) -> None: ...

    # -- typing ---------------------------------------------------------------------------------

    def _resolve(self, tpe: TargetLike) -> Target:
        return resolve(tpe, self.app)

    def _named(self, service: str, handler: str) -> Target:
        return named(service, handler, self.app)

    async def _typed_call(self, tpe: TargetLike, key: typing.Optional[str], arg: typing.Any, idempotency_key: typing.Optional[str], headers: Headers,
                          flow: typing.Optional[FlowOptions] = None) -> typing.Any:
        target = self._resolve(tpe)
        target.check_request(key, idempotency_key, headers)
        payload = self._encoded(target.input_serde.serialize(arg))
        output = await self._call(self._coded(target), key, payload, idempotency_key, headers, flow)
        return target.output_serde.deserialize(await self._decoded(output))

    async def _typed_send(self, tpe: TargetLike, key: typing.Optional[str], arg: typing.Any, delay: typing.Optional[timedelta], idempotency_key: typing.Optional[str], headers: Headers,
                          flow: typing.Optional[FlowOptions] = None) -> RestateClientSendHandle:
        target = self._resolve(tpe)
        target.check_request(key, idempotency_key, headers)
        payload = self._encoded(target.input_serde.serialize(arg))
        return await self._send(self._coded(target), key, payload, delay, idempotency_key, headers, flow)

    def _coded(self, target: Target) -> Target:
        return target if self.journal_value_codec is None else dataclasses.replace(target, encoded=True)

    def _encoded(self, payload: bytes) -> bytes:
        return encoded(self.journal_value_codec, payload)

    async def _decoded(self, output: bytes) -> bytes:
        return await decoded(self.journal_value_codec, output) or b""

    # -- what a transport implements, on bytes ------------------------------------------------------

    @abc.abstractmethod
    async def _call(self, target: Target, key: typing.Optional[str], payload: bytes, idempotency_key: typing.Optional[str], headers: Headers,
                    flow: typing.Optional[FlowOptions] = None) -> bytes:
        """`flow`: the scope and limit key, when the request has them."""

    @abc.abstractmethod
    async def _send(self, target: Target, key: typing.Optional[str], payload: bytes, delay: typing.Optional[timedelta], idempotency_key: typing.Optional[str], headers: Headers,
                    flow: typing.Optional[FlowOptions] = None) -> RestateClientSendHandle: ...

    @abc.abstractmethod
    async def _attach(self, invocation_id: str) -> bytes: ...

    @abc.abstractmethod
    async def _output(self, invocation_id: str) -> bytes: ...

    @abc.abstractmethod
    async def _complete_awakeable(self, awakeable_id: str, value: typing.Optional[bytes], failure: typing.Optional[Failure], content_type: str = "application/json") -> None:
        """`content_type` says how a value is encoded: JSON, unless the caller's serde is not."""

    @abc.abstractmethod
    async def _cancel(self, invocation_id: str) -> None: ...
