"""`ctx.run` and database steps (`ctx.run_in_transaction`): the context's side-effect commands.

The machine numbers the command and, on replay, already holds its result. Otherwise the action
runs here (retried in place as its `RunOptions` say), and its result is journaled and flushed
before the handler sees it; a database step journals it in the step's own transaction instead
(see `runtime/transaction.py`).
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import inspect
import time
import typing
from datetime import timedelta

from restate_pg.api.context import RestateDurableFuture
from restate_pg.api.errors import RetryableError, SdkInternalBaseException, TerminalError
from restate_pg.api.retry import RunOptions
from restate_pg.api.serde import DefaultSerde, Serde
from restate_pg.api.transaction import TransactionOptions
from restate_pg.observability import tracing
from restate_pg.observability.metrics import METRICS
from restate_pg.runtime.core import AttemptFailed, ContextCore, logger
from restate_pg.runtime.futures import DurableFuture
from restate_pg.runtime.journal import Result
from restate_pg.runtime.machine import IN_TRANSACTION
from restate_pg.runtime.port import Statement
from restate_pg.runtime.transaction import Step, StepBinding, binding_for, is_fenced
from restate_pg.core.errors import Fenced
from restate_pg.core.records import Batch, Failure, JournalRow

T = typing.TypeVar("T")

_RUN_INITIAL_INTERVAL = 0.05
_RUN_FACTOR = 2.0
_RUN_MAX_INTERVAL = 10.0


def return_type_of(action: typing.Callable[..., typing.Any]) -> typing.Any:
    """The action's return annotation (None when it has none or it cannot be resolved): as in
    restate-sdk, it decides what the journaled result is rebuilt as, on the first execution and
    on replay alike (a pydantic model, a dataclass, a msgspec struct...)."""
    try:
        annotation = inspect.signature(action, eval_str=True).return_annotation
    except (TypeError, ValueError, NameError, AttributeError):
        return None
    return None if annotation is inspect.Signature.empty else annotation


class RunCommands(ContextCore):
    def run(
        self,
        name: str,
        action: typing.Callable[..., typing.Any],
        serde: Serde[T] = DefaultSerde(),
        max_attempts: typing.Optional[int] = None,
        max_retry_duration: typing.Optional[timedelta] = None,
        type_hint: typing.Optional[typing.Type[T]] = None,
        args: typing.Optional[typing.Tuple[typing.Any, ...]] = None,
    ) -> RestateDurableFuture[T]:
        options: RunOptions[T] = RunOptions(
            serde=serde, type_hint=type_hint, max_attempts=max_attempts, max_duration=max_retry_duration
        )
        return self.run_typed(name, action, options, *(args or ()))

    def run_typed(
        self,
        name: str,
        action: typing.Callable[..., typing.Any],
        options: RunOptions[T] = RunOptions(),
        /,
        *args: typing.Any,
        **kwargs: typing.Any,
    ) -> RestateDurableFuture[T]:
        serde = options.serde
        if isinstance(serde, DefaultSerde):
            serde = serde.with_maybe_type(options.type_hint or return_type_of(action))
        command, _ = self._command(self._machine.issue, "Run", name)
        future: DurableFuture[T] = DurableFuture(self, command, serde.deserialize)
        if not self._machine.is_done(command):
            execute = functools.partial(self._execute_run, command, name, action, options, serde, args, kwargs)
            future._start = functools.partial(self._start_run, command, name, execute)
        return future

    def _start_run(self, command: int, name: str, execute: typing.Callable[[], typing.Awaitable[None]]) -> None:
        body = execute()
        self._runs[command] = asyncio.ensure_future(body if tracing.tracer() is None else tracing.traced_run(name, body))

    async def _execute_run(
        self,
        command: int,
        name: str,
        action: typing.Callable[..., typing.Any],
        options: RunOptions[typing.Any],
        serde: Serde[typing.Any],
        args: typing.Tuple[typing.Any, ...],
        kwargs: typing.Dict[str, typing.Any],
    ) -> None:
        started = time.monotonic()
        tries = 0
        max_duration = options.max_duration or options.max_retry_duration
        while True:
            tries += 1
            try:
                if inspect.iscoroutinefunction(action):
                    value = await action(*args, **kwargs)
                else:
                    call = functools.partial(contextvars.copy_context().run, action, *args, **kwargs)
                    value = await asyncio.get_running_loop().run_in_executor(None, call)
                    if inspect.isawaitable(value):
                        value = await value
                result = Result(self._encode(serde.serialize(value)))
                break
            except TerminalError as exc:
                result = Result(None, Failure(exc.status_code, exc.message, exc.metadata))
                break
            except (SdkInternalBaseException, asyncio.CancelledError):
                raise
            except Exception as exc:
                if not options.retries_in_place():
                    self._fail_attempt(exc)
                    raise AttemptFailed(f"ctx.run {name!r} failed: {exc!r}") from exc
                elapsed = time.monotonic() - started
                exhausted = (options.max_attempts is not None and tries >= options.max_attempts) or (
                    max_duration is not None and elapsed >= max_duration.total_seconds()
                )
                code = exc.status_code if isinstance(exc, RetryableError) else 500
                if exhausted:
                    result = Result(None, Failure(code, str(exc) or repr(exc)))
                    break
                delay = _run_retry_delay(options, tries)
                if isinstance(exc, RetryableError) and exc.retry_after is not None:
                    delay = exc.retry_after.total_seconds()
                logger.info("ctx.run %r of %s failed (try %d), retrying in %.3fs: %r", name, self.invocation_id, tries, delay, exc)
                await asyncio.sleep(delay)
        self._check_open()
        row = self._machine.journal_run(command, name, result)
        await self.flush()  # the result must be durable before the handler sees it
        METRICS.observe(METRICS.run_duration, self.labels, time.monotonic() - started)
        self._resolve(command, Result(result.value, result.failure, row.index))

    def run_in_transaction(
        self,
        name: str,
        action: typing.Callable[..., typing.Any],
        options: TransactionOptions[T] = TransactionOptions(),
        /,
        *args: typing.Any,
        **kwargs: typing.Any,
    ) -> RestateDurableFuture[T]:
        """`run_typed` for database writes: `action(conn, *args, **kwargs)` runs in the
        transaction that journals its result, so it takes effect exactly once (see
        `runtime/transaction.py`); on replay the recorded result is returned without running it."""
        serde = options.serde
        if isinstance(serde, DefaultSerde):
            serde = serde.with_maybe_type(options.type_hint)
        binding = binding_for(options.session, action, self._host.store.conninfo)
        command, _ = self._command(self._machine.issue, "Run", name, IN_TRANSACTION)
        future: DurableFuture[T] = DurableFuture(self, command, serde.deserialize)
        if not self._machine.is_done(command):
            execute = functools.partial(self._execute_in_transaction, command, name, binding, action, serde, args, kwargs)
            future._start = functools.partial(self._start_run, command, name, execute)
        return future

    async def _execute_in_transaction(
        self,
        command: int,
        name: str,
        binding: StepBinding,
        action: typing.Callable[..., typing.Any],
        serde: Serde[typing.Any],
        args: typing.Tuple[typing.Any, ...],
        kwargs: typing.Dict[str, typing.Any],
    ) -> None:
        started = time.monotonic()
        # The invocation's rows must exist before the step's fence can see them: they may be in
        # the buffer, or in a flush under way (holding the flush lock), which this waits for.
        await self.flush()
        statements = self._host.store.step_statements(self._lease)
        sealed: typing.List[typing.Tuple[Batch, JournalRow]] = []

        def seal(value: typing.Any, error: typing.Optional[TerminalError]) -> Statement:
            self._check_open()
            raw = self._encode(serde.serialize(value)) if error is None else None
            failure = None if error is None else Failure(error.status_code, error.message, error.metadata)
            row = self._machine.journal_run(command, name, Result(raw, failure), IN_TRANSACTION)
            batch = self._machine.take_batch()
            sealed.append((batch, row))
            return statements.flush(batch)

        try:
            flushed = await binding.transact(Step(statements.fence(), seal), action, args, kwargs)
        except BaseException as exc:
            for batch, row in sealed:  # not committed: the buffered writes wait for the next flush
                self._machine.restore(batch, without=row)
            if isinstance(exc, (SdkInternalBaseException, asyncio.CancelledError)) or not isinstance(exc, Exception):
                raise
            if is_fenced(exc):
                raise Fenced(f"database step {name!r}: this attempt lost its lease") from None
            self._fail_attempt(exc)
            raise AttemptFailed(f"database step {name!r} failed: {exc!r}") from exc
        batch, row = sealed[0]
        self._committed(batch, statements.result(batch, flushed))
        METRICS.observe(METRICS.run_duration, self.labels, time.monotonic() - started)
        self._resolve(command, Result(row.value, row.failure, row.index))


def _run_retry_delay(options: RunOptions[typing.Any], tries: int) -> float:
    """Exponential backoff between the tries of a `ctx.run` retried in place."""
    initial = options.initial_retry_interval.total_seconds() if options.initial_retry_interval else _RUN_INITIAL_INTERVAL
    factor = options.retry_interval_factor if options.retry_interval_factor is not None else _RUN_FACTOR
    cap = options.max_retry_interval.total_seconds() if options.max_retry_interval else _RUN_MAX_INTERVAL
    return min(cap, initial * factor ** (tries - 1))
