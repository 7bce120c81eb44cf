"""`InvocationContext`: the one concrete context, replaying a handler against its journal.

Each context method issues a command. During replay the recorded command is checked and its
recorded result returned; past the end of the recording the command is new: its journal row and
its effects (state change, outgoing call) are buffered and written in the attempt's next flush.
Flushes happen when a `ctx.run` result must be durable, before the handler blocks on anything not
yet complete, and with the completion, so one transaction usually carries several entries.

The context is glue: what is journaled is decided by its `JournalMachine` (`runtime/machine.py`,
no I/O), the asyncio side lives in `ContextCore` (`runtime/core.py`), and the command groups in
sibling modules: `runs.py` (ctx.run, database steps), `calls.py` (calls, attach, cancel),
`state.py`. This module holds the invocation's accessors, sleeps, awakeables, durable promises.
"""

from __future__ import annotations

import hashlib
import time
import typing
from datetime import timedelta
from random import Random
from uuid import UUID

from restate_pg.api.context import (
    DurablePromise,
    Request,
    RestateDurableFuture,
    WorkflowContext,
    WorkflowSharedContext,
)
from restate_pg.api.completions import Schema, declared_schema
from restate_pg.api.errors import RetryableError, TerminalError
from restate_pg.api.serde import DefaultSerde, Serde
from restate_pg.runtime.calls import CallCommands
from restate_pg.runtime.core import AttemptFailed
from restate_pg.runtime.futures import DurableFuture, DurableSleepFuture, RuntimePromise
from restate_pg.runtime.runs import RunCommands
from restate_pg.runtime.scoped import FlowScope
from restate_pg.runtime.signals import SignalCommands
from restate_pg.runtime.state import StateCommands
from restate_pg.core.records import Failure

__all__ = ["AttemptFailed", "InvocationContext"]

T = typing.TypeVar("T")


class InvocationContext(RunCommands, CallCommands, StateCommands, SignalCommands, WorkflowContext,
                        WorkflowSharedContext):
    #: `ctx.random()`'s generator, seeded from the invocation id on first use.
    _random: typing.Optional[Random] = None

    # -- the invocation ----------------------------------------------------------------------

    def is_replaying(self) -> bool:
        """Whether the handler has yet to issue some recorded command: the code it runs now ran in
        an earlier attempt (whose log lines `restate.getLogger` loggers do not repeat)."""
        return self._machine.is_replaying()

    def request(self) -> Request:
        headers = dict(self._invocation.headers)
        return Request(
            id=self._invocation.id,
            headers=headers,
            attempt_headers=dict(self.attempt_headers),
            body=self._invocation.input,
            attempt_finished_event=self._finished,
            idempotency_key=self._invocation.idempotency_key,
            scope=self._invocation.scope,
            limit_key=self._invocation.limit_key,
        )

    def scope(self, scope: str) -> FlowScope:
        return FlowScope(self, scope)

    def key(self) -> str:
        if self._invocation.key is None:
            raise TerminalError("key() is only available in virtual object and workflow handlers")
        return self._invocation.key

    def random(self) -> Random:
        if self._random is None:
            seed = int.from_bytes(hashlib.sha256(self._invocation.id.encode()).digest()[:8], "big")
            self._random = Random(seed)
        return self._random

    def uuid(self) -> UUID:
        return UUID(int=self.random().getrandbits(128), version=4)

    def time(self) -> RestateDurableFuture[float]:
        return self.run_typed("timestamp", time.time)

    # -- timers ------------------------------------------------------------------------------

    def sleep(self, delta: timedelta, name: typing.Optional[str] = None) -> DurableSleepFuture:
        command, wake_at = self._command(self._machine.sleep, delta, name, self._host.clock.latest)
        if not self._machine.is_done(command) and command not in self._timers:  # armed at start if recorded
            self._arm_timer(command, wake_at)
        return DurableSleepFuture(self, command, lambda _: None, coded=False)

    # -- awakeables --------------------------------------------------------------------------

    def awakeable(
        self, serde: Serde[T] = DefaultSerde(), type_hint: typing.Optional[typing.Type[T]] = None
    ) -> typing.Tuple[str, RestateDurableFuture[T]]:
        schema = self._declared(serde, type_hint)  # journaled for whoever resolves it
        if isinstance(serde, DefaultSerde):
            serde = serde.with_maybe_type(type_hint)
        command, awakeable_id = self._command(self._machine.awakeable, self.invocation_id, schema)
        return awakeable_id, DurableFuture(self, command, serde.deserialize)

    def resolve_awakeable(self, name: str, value: T, serde: Serde[T] = DefaultSerde()) -> None:
        raw = self._encode(serde.serialize(value))
        self._command(self._machine.complete_awakeable, name, raw, None)

    def reject_awakeable(self, name: str, failure_message: str, failure_code: int = 500) -> None:
        self._command(self._machine.complete_awakeable, name, None, Failure(failure_code, failure_message))

    def _declared(self, serde: Serde[typing.Any], type_hint: typing.Any) -> typing.Optional[Schema]:
        """The JSON schema values for this waiter are checked against; none under a codec,
        whose encoded values are no JSON to check (restate-sdk skips its payload checks too)."""
        return declared_schema(serde, type_hint) if self.codec is None else None

    # -- durable promises (workflows) --------------------------------------------------------

    def promise(
        self, name: str, serde: Serde[T] = DefaultSerde(), type_hint: typing.Optional[typing.Type[T]] = None
    ) -> DurablePromise[T]:
        if self._handler.service.service_type != "workflow":
            self._fail_attempt(RetryableError("only Workflow services support durable promises"))
            raise AttemptFailed("only Workflow services support durable promises")
        schema = self._declared(serde, type_hint)  # journaled with its waits, for whoever resolves it
        if isinstance(serde, DefaultSerde):
            serde = serde.with_maybe_type(type_hint)
        return RuntimePromise(self, name, serde, schema)

    def _promise_key(self) -> typing.Tuple[str, str]:
        return self._handler.service.name, self._invocation.key or ""

    def promise_get(self, name: str, peek: bool, decode: typing.Callable[[typing.Optional[bytes]], T],
                    schema: typing.Optional[Schema] = None) -> DurableFuture[T]:
        command = self._command(self._machine.promise_get, name, peek, self._promise_key(), schema)
        return DurableFuture(self, command, decode)

    def promise_complete(self, name: str, value: typing.Optional[bytes], failure: typing.Optional[Failure]) -> DurableFuture[None]:
        stored = None if value is None else self._encode(value)
        command = self._command(self._machine.promise_complete, name, stored, failure, self._promise_key())
        return DurableFuture(self, command, lambda _: None, coded=False)
