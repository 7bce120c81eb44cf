"""The context classes handlers receive, with restate-sdk's names and signatures.

These are the types handler code is written against. One concrete class in
`restate_pg.runtime.context` implements all of them; as in restate-sdk, which operations a handler
may use is enforced when it runs (a shared handler that writes state fails its attempt).
"""

from __future__ import annotations

import abc
import typing
from dataclasses import dataclass
from datetime import timedelta
from random import Random
from uuid import UUID

from restate_pg.api.retry import RunOptions
from restate_pg.api.serde import DefaultSerde, Serde
from restate_pg.api.transaction import TransactionOptions

T = typing.TypeVar("T")
I = typing.TypeVar("I")  # noqa: E741
O = typing.TypeVar("O")  # noqa: E741
P = typing.ParamSpec("P")

HandlerType = typing.Callable[..., typing.Awaitable[typing.Any]]
RunAction = typing.Union[
    typing.Callable[..., typing.Coroutine[typing.Any, typing.Any, T]], typing.Callable[..., T]
]


class RestateDurableFuture(typing.Generic[T], typing.Awaitable[T], abc.ABC):
    """The result of a journaled action. Awaiting a failed one raises `TerminalError`."""

    @abc.abstractmethod
    def __await__(self) -> typing.Generator[typing.Any, typing.Any, T]: ...


class RestateDurableCallFuture(RestateDurableFuture[T]):
    """The result of a request-response call to another handler."""

    @abc.abstractmethod
    async def invocation_id(self) -> str: ...

    @abc.abstractmethod
    async def cancel_invocation(self) -> None: ...


class RestateDurableSleepFuture(RestateDurableFuture[None]):
    """A durable timer."""


class SendHandle(abc.ABC):
    """The handle of a one-way send."""

    @abc.abstractmethod
    async def invocation_id(self) -> str: ...

    @abc.abstractmethod
    async def cancel_invocation(self) -> None: ...


class AttemptFinishedEvent(abc.ABC):
    """Set when the current attempt ends (completion, suspension, failure)."""

    @abc.abstractmethod
    def is_set(self) -> bool: ...

    @abc.abstractmethod
    async def wait(self) -> None: ...


@dataclass
class Request:
    """The request that started this invocation."""

    id: str
    headers: typing.Dict[str, str]
    attempt_headers: typing.Dict[str, str]
    body: bytes
    attempt_finished_event: AttemptFinishedEvent
    scope: typing.Optional[str] = None
    limit_key: typing.Optional[str] = None
    idempotency_key: typing.Optional[str] = None


class ScopedContext(abc.ABC):
    """Calls and sends within a scope (`ctx.scope(name)`), each with an optional `limit_key`.

    Restate's flow control (a preview there) groups invocations by scope and limits them by limit
    key; restate-pg records both with the invocation and enforces the rules set on them
    (concurrency, rate, backlog: docs/flow-control.md)."""

    @abc.abstractmethod
    def service_call(
        self, tpe: HandlerType, arg: typing.Any, limit_key: typing.Optional[str] = None,
        idempotency_key: typing.Optional[str] = None, headers: typing.Optional[typing.Dict[str, str]] = None,
    ) -> RestateDurableCallFuture[typing.Any]: ...

    @abc.abstractmethod
    def service_send(
        self, tpe: HandlerType, arg: typing.Any, send_delay: typing.Optional[timedelta] = None,
        limit_key: typing.Optional[str] = None, idempotency_key: typing.Optional[str] = None,
        headers: typing.Optional[typing.Dict[str, str]] = None,
    ) -> SendHandle: ...

    @abc.abstractmethod
    def object_call(
        self, tpe: HandlerType, key: str, arg: typing.Any, limit_key: typing.Optional[str] = None,
        idempotency_key: typing.Optional[str] = None, headers: typing.Optional[typing.Dict[str, str]] = None,
    ) -> RestateDurableCallFuture[typing.Any]: ...

    @abc.abstractmethod
    def object_send(
        self, tpe: HandlerType, key: str, arg: typing.Any, send_delay: typing.Optional[timedelta] = None,
        limit_key: typing.Optional[str] = None, idempotency_key: typing.Optional[str] = None,
        headers: typing.Optional[typing.Dict[str, str]] = None,
    ) -> SendHandle: ...

    @abc.abstractmethod
    def workflow_call(
        self, tpe: HandlerType, key: str, arg: typing.Any, limit_key: typing.Optional[str] = None,
        idempotency_key: typing.Optional[str] = None, headers: typing.Optional[typing.Dict[str, str]] = None,
    ) -> RestateDurableCallFuture[typing.Any]: ...

    @abc.abstractmethod
    def workflow_send(
        self, tpe: HandlerType, key: str, arg: typing.Any, send_delay: typing.Optional[timedelta] = None,
        limit_key: typing.Optional[str] = None, idempotency_key: typing.Optional[str] = None,
        headers: typing.Optional[typing.Dict[str, str]] = None,
    ) -> SendHandle: ...


class Context(abc.ABC):
    """What every handler can do."""

    @abc.abstractmethod
    def request(self) -> Request: ...

    @abc.abstractmethod
    def scope(self, scope: str) -> ScopedContext:
        """Calls and sends made through the result carry `scope` (see `ScopedContext`)."""

    @abc.abstractmethod
    def signal(
        self, name: str, serde: Serde[T] = DefaultSerde(), type_hint: typing.Optional[typing.Type[T]] = None
    ) -> RestateDurableFuture[T]:
        """Wait for the named signal of this invocation. A signal sent before the wait starts is
        kept, and completes the wait at once; it is durable like any completion."""

    @abc.abstractmethod
    def resolve_signal(self, invocation_id: str, name: str, value: I, serde: Serde[I] = DefaultSerde()) -> None:
        """Complete another invocation's named signal with `value` (once: later ones are ignored)."""

    @abc.abstractmethod
    def reject_signal(self, invocation_id: str, name: str, failure_message: str, failure_code: int = 500) -> None:
        """Complete another invocation's named signal with a failure its waiter raises as TerminalError."""

    @abc.abstractmethod
    def random(self) -> Random:
        """A random generator seeded from the invocation id: the same numbers on every replay."""

    @abc.abstractmethod
    def uuid(self) -> UUID:
        """A UUID from `random()`: stable across retries."""

    @abc.abstractmethod
    def time(self) -> RestateDurableFuture[float]:
        """The current time, journaled."""

    @abc.abstractmethod
    def run(
        self,
        name: str,
        action: RunAction[T],
        serde: Serde[T] = DefaultSerde(),
        max_attempts: typing.Optional[int] = None,
        max_retry_duration: typing.Optional[timedelta] = None,
        type_hint: typing.Optional[typing.Type[T]] = None,
        args: typing.Optional[typing.Tuple[typing.Any, ...]] = None,
    ) -> RestateDurableFuture[T]:
        """Deprecated form of `run_typed`."""

    @abc.abstractmethod
    def run_typed(
        self,
        name: str,
        action: RunAction[T],
        options: RunOptions[T] = RunOptions(),
        /,
        *args: typing.Any,
        **kwargs: typing.Any,
    ) -> RestateDurableFuture[T]:
        """Run a side effect once: its result is journaled before the handler goes on."""

    @abc.abstractmethod
    def run_in_transaction(
        self,
        name: str,
        action: typing.Callable[..., typing.Any],
        options: TransactionOptions[T] = TransactionOptions(),
        /,
        *args: typing.Any,
        **kwargs: typing.Any,
    ) -> RestateDurableFuture[T]:
        """Run `action(conn, *args, **kwargs)` in the PostgreSQL transaction that journals its
        result: its writes and the journal entry commit together, so they happen exactly once.
        A TerminalError rolls its writes back and is journaled as the step's failure; any other
        exception rolls back and fails the attempt. restate-pg's own (not in restate-sdk)."""

    @abc.abstractmethod
    def sleep(self, delta: timedelta, name: typing.Optional[str] = None) -> RestateDurableSleepFuture: ...

    @abc.abstractmethod
    def service_call(
        self,
        tpe: HandlerType,
        arg: typing.Any,
        idempotency_key: typing.Optional[str] = None,
        headers: typing.Optional[typing.Dict[str, str]] = None,
    ) -> RestateDurableCallFuture[typing.Any]: ...

    @abc.abstractmethod
    def service_send(
        self,
        tpe: HandlerType,
        arg: typing.Any,
        send_delay: typing.Optional[timedelta] = None,
        idempotency_key: typing.Optional[str] = None,
        headers: typing.Optional[typing.Dict[str, str]] = None,
    ) -> SendHandle: ...

    @abc.abstractmethod
    def object_call(
        self,
        tpe: HandlerType,
        key: str,
        arg: typing.Any,
        idempotency_key: typing.Optional[str] = None,
        headers: typing.Optional[typing.Dict[str, str]] = None,
    ) -> RestateDurableCallFuture[typing.Any]: ...

    @abc.abstractmethod
    def object_send(
        self,
        tpe: HandlerType,
        key: str,
        arg: typing.Any,
        send_delay: typing.Optional[timedelta] = None,
        idempotency_key: typing.Optional[str] = None,
        headers: typing.Optional[typing.Dict[str, str]] = None,
    ) -> SendHandle: ...

    @abc.abstractmethod
    def workflow_call(
        self,
        tpe: HandlerType,
        key: str,
        arg: typing.Any,
        idempotency_key: typing.Optional[str] = None,
        headers: typing.Optional[typing.Dict[str, str]] = None,
    ) -> RestateDurableCallFuture[typing.Any]: ...

    @abc.abstractmethod
    def workflow_send(
        self,
        tpe: HandlerType,
        key: str,
        arg: typing.Any,
        send_delay: typing.Optional[timedelta] = None,
        idempotency_key: typing.Optional[str] = None,
        headers: typing.Optional[typing.Dict[str, str]] = None,
    ) -> SendHandle: ...

    @abc.abstractmethod
    def generic_call(
        self,
        service: str,
        handler: str,
        arg: bytes,
        key: typing.Optional[str] = None,
        idempotency_key: typing.Optional[str] = None,
        headers: typing.Optional[typing.Dict[str, str]] = None,
        scope: typing.Optional[str] = None,
        limit_key: typing.Optional[str] = None,
    ) -> RestateDurableCallFuture[bytes]: ...

    @abc.abstractmethod
    def generic_send(
        self,
        service: str,
        handler: str,
        arg: bytes,
        key: typing.Optional[str] = None,
        send_delay: typing.Optional[timedelta] = None,
        idempotency_key: typing.Optional[str] = None,
        headers: typing.Optional[typing.Dict[str, str]] = None,
        scope: typing.Optional[str] = None,
        limit_key: typing.Optional[str] = None,
    ) -> SendHandle: ...


    @abc.abstractmethod
    def awakeable(
        self, serde: Serde[T] = DefaultSerde(), type_hint: typing.Optional[typing.Type[T]] = None
    ) -> typing.Tuple[str, RestateDurableFuture[T]]:
        """An id to hand to another system, and a future that completes when it is resolved."""

    @abc.abstractmethod
    def resolve_awakeable(self, name: str, value: T, serde: Serde[T] = DefaultSerde()) -> None: ...

    @abc.abstractmethod
    def attach_invocation(
        self, invocation_id: str, serde: Serde[T] = DefaultSerde(), type_hint: typing.Optional[typing.Type[T]] = None
    ) -> RestateDurableFuture[T]:
        """Wait for another invocation's result (TerminalError 404 if there is no such invocation)."""

    @abc.abstractmethod
    def reject_awakeable(self, name: str, failure_message: str, failure_code: int = 500) -> None: ...

    @abc.abstractmethod
    def cancel_invocation(self, invocation_id: str) -> None:
        """Cancel another invocation (it fails with TerminalError 409 after running its compensations)."""


class KeyValueStore(abc.ABC):
    """Reading and writing the K/V state of the current object key."""

    @abc.abstractmethod
    def get(
        self,
        name: str,
        serde: Serde[T] = DefaultSerde(),
        type_hint: typing.Optional[typing.Type[T]] = None,
        entry_name: typing.Optional[str] = None,
    ) -> typing.Awaitable[typing.Optional[T]]: ...

    @abc.abstractmethod
    def state_keys(self, entry_name: typing.Optional[str] = None) -> typing.Awaitable[typing.List[str]]: ...

    @abc.abstractmethod
    def set(self, name: str, value: T, serde: Serde[T] = DefaultSerde(), entry_name: typing.Optional[str] = None) -> None: ...

    @abc.abstractmethod
    def clear(self, name: str, entry_name: typing.Optional[str] = None) -> None: ...

    @abc.abstractmethod
    def clear_all(self, entry_name: typing.Optional[str] = None) -> None: ...


class ObjectContext(Context, KeyValueStore):
    """The context of an exclusive virtual-object handler."""

    @abc.abstractmethod
    def key(self) -> str: ...


class ObjectSharedContext(Context):
    """The context of a shared virtual-object handler: state is read-only."""

    @abc.abstractmethod
    def key(self) -> str: ...

    @abc.abstractmethod
    def get(
        self,
        name: str,
        serde: Serde[T] = DefaultSerde(),
        type_hint: typing.Optional[typing.Type[T]] = None,
        entry_name: typing.Optional[str] = None,
    ) -> typing.Awaitable[typing.Optional[T]]: ...

    @abc.abstractmethod
    def state_keys(self, entry_name: typing.Optional[str] = None) -> typing.Awaitable[typing.List[str]]: ...


class DurablePromise(typing.Generic[T], abc.ABC):
    """A named promise of one workflow run, completed once by any of its handlers or the ingress."""

    def __init__(self, name: str, serde: Serde[T] = DefaultSerde()) -> None:
        self.name = name
        self.serde = serde

    @abc.abstractmethod
    def value(self) -> RestateDurableFuture[T]:
        """Wait until the promise is resolved (its value) or rejected (raises TerminalError)."""

    @abc.abstractmethod
    def peek(self) -> typing.Awaitable[typing.Optional[T]]:
        """The value if the promise is resolved already, else None; never waits."""

    @abc.abstractmethod
    def resolve(self, value: T) -> typing.Awaitable[None]:
        """Resolve the promise; awaiting raises TerminalError 409 if it was completed before."""

    @abc.abstractmethod
    def reject(self, message: str, code: int = 500) -> typing.Awaitable[None]: ...

    def __await__(self) -> typing.Generator[typing.Any, typing.Any, T]:
        return self.value().__await__()


class WorkflowContext(ObjectContext):
    """The context of a workflow's `main` handler."""

    @abc.abstractmethod
    def promise(
        self, name: str, serde: Serde[T] = DefaultSerde(), type_hint: typing.Optional[typing.Type[T]] = None
    ) -> DurablePromise[T]: ...


class WorkflowSharedContext(ObjectSharedContext):
    """The context of a workflow's shared handlers."""

    @abc.abstractmethod
    def promise(
        self, name: str, serde: Serde[T] = DefaultSerde(), type_hint: typing.Optional[typing.Type[T]] = None
    ) -> DurablePromise[T]: ...
