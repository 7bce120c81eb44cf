"""Named signals: `ctx.signal(name)` waits for one, `ctx.resolve_signal` / `ctx.reject_signal` send one.

As in Restate, a signal belongs to an invocation and is identified by its name: it may arrive
before the handler starts waiting (it is journaled on arrival and completes the wait at once), it
is durable (the journal row is the whole record), it completes once (the store ignores a second
signal of the same name) and its future works in every combinator, ordered by its journal position.
"""

from __future__ import annotations

import typing

from restate_pg.api.context import RestateDurableFuture
from restate_pg.api.serde import DefaultSerde, Serde
from restate_pg.core.records import Failure
from restate_pg.runtime.core import ContextCore
from restate_pg.runtime.futures import DurableFuture

T = typing.TypeVar("T")
I = typing.TypeVar("I")  # noqa: E741


class SignalCommands(ContextCore):
    def signal(
        self, name: str, serde: Serde[T] = DefaultSerde(), type_hint: typing.Optional[typing.Type[T]] = None
    ) -> RestateDurableFuture[T]:
        if isinstance(serde, DefaultSerde):
            serde = serde.with_maybe_type(type_hint)
        return DurableFuture(self, self._machine.signal(name), serde.deserialize)

    def resolve_signal(self, invocation_id: str, name: str, value: I, serde: Serde[I] = DefaultSerde()) -> None:
        self._command(self._machine.send_signal, invocation_id, name, self._encode(serde.serialize(value)), None)

    def reject_signal(self, invocation_id: str, name: str, failure_message: str, failure_code: int = 500) -> None:
        self._command(self._machine.send_signal, invocation_id, name, None, Failure(failure_code, failure_message))
