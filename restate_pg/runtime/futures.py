"""Durable futures: what `ctx.run`, `ctx.sleep` and calls return.

A future names a journal command; awaiting it asks the context for that command's result, which
may already be recorded (replay), arrive in memory, or require the invocation to suspend.
"""

from __future__ import annotations

import typing

from restate_pg.api.context import (
    DurablePromise,
    RestateDurableCallFuture,
    RestateDurableFuture,
    RestateDurableSleepFuture,
    SendHandle,
)

if typing.TYPE_CHECKING:
    from restate_pg.api.serde import Serde
    from restate_pg.runtime.calls import CallCommands
    from restate_pg.runtime.context import InvocationContext
    from restate_pg.runtime.core import ContextCore

T = typing.TypeVar("T")


class DurableFuture(RestateDurableFuture[T]):
    def __init__(
        self,
        ctx: "ContextCore",
        command_index: int,
        decode: typing.Callable[[typing.Optional[bytes]], T],
        start: typing.Optional[typing.Callable[[], None]] = None,
        coded: bool = True,
    ) -> None:
        self._ctx = ctx
        self.command_index = command_index
        self._decode = decode
        self._start = start
        #: Whether the result is a value the app's journal value codec encoded (not a sleep's or
        #: a promise completion's acknowledgement).
        self._coded = coded

    def start(self) -> None:
        """Begin the work behind the future (a lazy `ctx.run`); a no-op for the others."""
        if self._start is not None:
            start, self._start = self._start, None
            start()

    async def _result(self) -> T:
        result = await self._ctx.wait_for(self)
        result.raise_for_failure()
        return self._decode(await self._ctx.decoded(result.value) if self._coded else result.value)

    def __await__(self) -> typing.Generator[typing.Any, typing.Any, T]:
        return self._result().__await__()


class DurableSleepFuture(DurableFuture[None], RestateDurableSleepFuture):
    pass


class DurableCallFuture(DurableFuture[T], RestateDurableCallFuture[T]):
    def __init__(
        self,
        ctx: "CallCommands",
        command_index: int,
        decode: typing.Callable[[typing.Optional[bytes]], T],
        invocation_id: str,
    ) -> None:
        super().__init__(ctx, command_index, decode)
        self._caller = ctx
        self._invocation_id = invocation_id

    async def invocation_id(self) -> str:
        return self._invocation_id

    async def cancel_invocation(self) -> None:
        self._caller.cancel_invocation(self._invocation_id)


class DurableSendHandle(SendHandle):
    def __init__(self, ctx: "CallCommands", invocation_id: str) -> None:
        self._ctx = ctx
        self._invocation_id = invocation_id

    async def invocation_id(self) -> str:
        return self._invocation_id

    async def cancel_invocation(self) -> None:
        self._ctx.cancel_invocation(self._invocation_id)


class RuntimePromise(DurablePromise[T]):
    """A workflow's durable promise, as a handler sees it; each method is a journaled command."""

    def __init__(self, ctx: "InvocationContext", name: str, serde: "Serde[T]",
                 schema: typing.Optional[typing.Dict[str, typing.Any]] = None) -> None:
        self._ctx = ctx
        self.name = name
        self.serde = serde
        #: The JSON schema of the declared type, journaled with `value()` and `peek()`.
        self._schema = schema

    def _decode(self, value: typing.Optional[bytes]) -> typing.Optional[T]:
        return None if value is None else self.serde.deserialize(value)

    def value(self) -> RestateDurableFuture[T]:
        return self._ctx.promise_get(self.name, False, self._decode, self._schema)  # type: ignore[arg-type]

    def peek(self) -> typing.Awaitable[typing.Optional[T]]:
        return self._ctx.promise_get(self.name, True, self._decode, self._schema)

    def resolve(self, value: T) -> typing.Awaitable[None]:
        return self._ctx.promise_complete(self.name, self.serde.serialize(value), None)

    def reject(self, message: str, code: int = 500) -> typing.Awaitable[None]:
        from restate_pg.core.records import Failure

        return self._ctx.promise_complete(self.name, None, Failure(code, message))

    def __await__(self) -> typing.Generator[typing.Any, typing.Any, T]:
        return self.value().__await__()
