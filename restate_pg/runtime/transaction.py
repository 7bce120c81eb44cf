"""The transaction of a database step (`ctx.run_in_transaction`) and the connections it runs on.

A `ctx.run` result is journaled in a transaction of its own after the closure returns, so a crash
between the two runs the closure again. A database step closes that gap for writes to the same
PostgreSQL database: the step's transaction takes the attempt's fence first (so a takeover waits
for it, and an attempt that lost its lease writes nothing), runs the action in a savepoint, then
calls `flush()` with the step's journal entry and whatever the attempt had buffered, and commits.
The action's writes and the entry are then one atomic unit: both or neither.

A `StepBinding` says where that transaction runs: an async one drives it on the event loop, a
thread one runs it whole on one thread (sync drivers block, and Django's connections belong to
the thread that opened them), asking the loop for the journal entry through `Step.seal`.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import contextvars
import inspect
import typing
from dataclasses import dataclass

from restate_pg.api.errors import TerminalError
from restate_pg.store import user_connections
from restate_pg.store.errors import is_fenced
from restate_pg.store.user_connections import Params, Row, execute, execute_async, is_sqlalchemy, is_sqlalchemy_async

__all__ = ["Step", "StepBinding", "binding_for", "is_fenced"]

Statement = typing.Tuple[str, Params]
#: Seconds a thread's transaction waits for the event loop to journal its outcome.
_SEAL_TIMEOUT = 30.0
#: The action's result, or the TerminalError it raised (its writes are rolled back).
Sealer = typing.Callable[[typing.Any, typing.Optional[TerminalError]], Statement]


@dataclass(frozen=True)
class Step:
    """What the context gives a binding: the fence to run first, and `seal`, which journals the
    action's outcome (on the event loop) and returns the `flush()` statement to run last."""

    fence: Statement
    seal: Sealer


class StepBinding(abc.ABC):
    """Where a database step's transaction runs, and what its action receives."""

    #: Whether the action is a coroutine function driven on the event loop.
    asynchronous: bool = False

    def call(self, action: typing.Callable[..., typing.Any], handle: typing.Any,
             args: typing.Tuple[typing.Any, ...], kwargs: typing.Mapping[str, typing.Any]) -> typing.Any:
        """Run the action with the transaction's connection or session first."""
        return action(handle, *args, **kwargs)

    @abc.abstractmethod
    async def transact(self, step: Step, action: typing.Callable[..., typing.Any],
                       args: typing.Tuple[typing.Any, ...], kwargs: typing.Mapping[str, typing.Any]) -> Row:
        """Run the step's transaction and commit it; the row of the `flush()` statement."""


class AsyncStepBinding(StepBinding):
    asynchronous = True

    @abc.abstractmethod
    def transaction(self) -> typing.AsyncContextManager[typing.Any]:
        """A transaction committed on success, rolled back on error; yields its handle."""

    @abc.abstractmethod
    def savepoint(self, handle: typing.Any) -> typing.AsyncContextManager[typing.Any]: ...

    async def transact(self, step, action, args, kwargs):  # type: ignore[no-untyped-def]
        async with self.transaction() as handle:
            await execute_async(handle, *step.fence)
            value, error = None, None
            try:
                async with self.savepoint(handle):
                    value = await self.call(action, handle, args, kwargs)
            except TerminalError as exc:
                error = exc
            return await execute_async(handle, *step.seal(value, error))


class ThreadStepBinding(StepBinding):
    @abc.abstractmethod
    def transaction(self) -> typing.ContextManager[typing.Any]:
        """A transaction committed on success, rolled back on error; yields its handle."""

    @abc.abstractmethod
    def savepoint(self, handle: typing.Any) -> typing.ContextManager[typing.Any]: ...

    async def transact(self, step, action, args, kwargs):  # type: ignore[no-untyped-def]
        loop = asyncio.get_running_loop()

        async def seal(value: typing.Any, error: typing.Optional[TerminalError]) -> Statement:
            return step.seal(value, error)

        def body() -> Row:
            with self.transaction() as handle:
                execute(handle, *step.fence)
                value, error = None, None
                try:
                    with self.savepoint(handle):
                        value = self.call(action, handle, args, kwargs)
                except TerminalError as exc:
                    error = exc
                # bounded: a loop that stopped meanwhile must not keep this thread (and the exit) waiting
                statement = asyncio.run_coroutine_threadsafe(seal(value, error), loop).result(timeout=_SEAL_TIMEOUT)
                return execute(handle, *statement)

        return await loop.run_in_executor(None, contextvars.copy_context().run, body)


class PsycopgAsyncBinding(AsyncStepBinding):
    """A connection of the step's own (not the worker's pool, whose connections must stay free
    for heartbeats and flushes however long actions take)."""

    def __init__(self, conninfo: str) -> None:
        self.conninfo = conninfo

    def transaction(self) -> typing.AsyncContextManager[typing.Any]:
        return user_connections.step_transaction_async(self.conninfo)

    def savepoint(self, handle: typing.Any) -> typing.AsyncContextManager[typing.Any]:
        return typing.cast(typing.AsyncContextManager[typing.Any], user_connections.savepoint(handle))


class PsycopgBinding(ThreadStepBinding):
    def __init__(self, conninfo: str) -> None:
        self.conninfo = conninfo

    def transaction(self) -> typing.ContextManager[typing.Any]:
        return user_connections.step_transaction(self.conninfo)

    def savepoint(self, handle: typing.Any) -> typing.ContextManager[typing.Any]:
        return typing.cast(typing.ContextManager[typing.Any], user_connections.savepoint(handle))


class SessionBinding(ThreadStepBinding):
    """A SQLAlchemy `Session` from `factory` (a `sessionmaker`)."""

    def __init__(self, factory: typing.Callable[[], typing.Any]) -> None:
        self.factory = factory

    @contextlib.contextmanager
    def transaction(self) -> typing.Iterator[typing.Any]:
        with self.factory() as session, session.begin():
            yield session

    def savepoint(self, handle: typing.Any) -> typing.ContextManager[typing.Any]:
        return typing.cast(typing.ContextManager[typing.Any], handle.begin_nested())


class AsyncSessionBinding(AsyncStepBinding):
    """A SQLAlchemy `AsyncSession` from `factory` (an `async_sessionmaker`)."""

    def __init__(self, factory: typing.Callable[[], typing.Any]) -> None:
        self.factory = factory

    @contextlib.asynccontextmanager
    async def transaction(self) -> typing.AsyncIterator[typing.Any]:
        async with self.factory() as session, session.begin():
            yield session

    def savepoint(self, handle: typing.Any) -> typing.AsyncContextManager[typing.Any]:
        return typing.cast(typing.AsyncContextManager[typing.Any], handle.begin_nested())


def binding_for(session: typing.Any, action: typing.Callable[..., typing.Any], conninfo: str) -> StepBinding:
    """The binding `TransactionOptions.session` asks for, checked against the kind of `action`."""
    asynchronous = inspect.iscoroutinefunction(action)
    if session is None:
        return PsycopgAsyncBinding(conninfo) if asynchronous else PsycopgBinding(conninfo)
    if isinstance(session, StepBinding):
        binding = session
    elif is_sqlalchemy_async(session):
        binding = AsyncSessionBinding(session)
    elif is_sqlalchemy(session):
        binding = SessionBinding(session)
    else:
        raise TypeError(f"run_in_transaction: session must be a SQLAlchemy sessionmaker or async_sessionmaker, "
                        f"not {type(session).__name__}")
    if binding.asynchronous != asynchronous:
        want = "a coroutine function (async def)" if binding.asynchronous else "a plain function (def)"
        raise TypeError(f"run_in_transaction: {type(binding).__name__} runs {want}; got {action!r}")
    return binding
