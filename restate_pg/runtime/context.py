"""`InvocationContext`: the one concrete context, replaying a handler against its journal.

Each context method issues a command. During replay the recorded command is checked and its
recorded result returned; past the end of the recording the command is new: its journal row and
its effects (state change, outgoing call) are buffered and written in the attempt's next flush.
Flushes happen when a `ctx.run` result must be durable, before the handler blocks on anything not
yet complete, and with the completion, so one transaction usually carries several entries.
"""

from __future__ import annotations

import asyncio
import base64
import contextvars
import functools
import hashlib
import inspect
import time
import typing
from datetime import datetime, timedelta, timezone
from random import Random
from uuid import UUID

import orjson

from restate_pg.api.context import (
    AttemptFinishedEvent,
    Request,
    RestateDurableFuture,
    WorkflowContext,
    WorkflowSharedContext,
)
from restate_pg.api.definitions import Handler, handler_of
from restate_pg.api.errors import (
    RetryableError,
    SdkInternalBaseException,
    SdkInternalException,
    SuspendedException,
    TerminalError,
)
from restate_pg.api.retry import RunOptions
from restate_pg.api.transaction import TransactionOptions
from restate_pg.api.serde import BytesSerde, DefaultSerde, JsonSerde, Serde
from restate_pg.observability import logs, tracing
from restate_pg.observability.metrics import METRICS
from restate_pg.runtime.futures import (
    DurableCallFuture,
    DurableFuture,
    DurableSendHandle,
    DurableSleepFuture,
    RuntimePromise,
)
from restate_pg.runtime.host import Host
from restate_pg.runtime.ids import new_awakeable_id, parse_awakeable_id
from restate_pg.runtime.submission import invocation_id_for, new_submission
from restate_pg.runtime.journal import NonDeterminismError, RecordedJournal, Result
from restate_pg.runtime.transaction import Step, StepBinding, binding_for, is_fenced
from restate_pg.store.driver import Fenced, flush_request, flush_result
from restate_pg.store.procedures import CANCEL_SIGNAL
from restate_pg.store.records import (
    Batch,
    Failure,
    FlushResult,
    InvocationRecord,
    JournalRow,
    Lease,
    MailboxItem,
    Outcome,
    PromiseCompletion,
    PromiseGet,
    Resolution,
    StateOp,
    Submission,
    Suspend,
)

logger = logs.internal_logger("restate_pg.runtime")

T = typing.TypeVar("T")

_RUN_INITIAL_INTERVAL = 0.05
_RUN_FACTOR = 2.0
_RUN_MAX_INTERVAL = 10.0

#: The params of a database step's journal entry (a Run), which tell it apart from a ctx.run.
_IN_TRANSACTION = {"transaction": True}


class _FinishedEvent(AttemptFinishedEvent):
    def __init__(self) -> None:
        self._event = asyncio.Event()

    def is_set(self) -> bool:
        return self._event.is_set()

    async def wait(self) -> None:
        await self._event.wait()

    def set(self) -> None:
        self._event.set()


class AttemptFailed(SdkInternalException):
    """Unwinds the handler after the attempt failed for a reason it must not swallow."""


class InvocationContext(WorkflowContext, WorkflowSharedContext):
    def __init__(
        self,
        host: Host,
        lease: Lease,
        invocation: InvocationRecord,
        handler: Handler,
        journal: typing.Sequence[JournalRow],
        mailbox: typing.Sequence[MailboxItem],
        wakeups: int,
        create: typing.Optional[Submission] = None,
        state: typing.Optional[typing.Dict[str, bytes]] = None,
    ) -> None:
        self._host = host
        self._lease = lease
        self._invocation = invocation
        self._handler = handler
        self._recorded = RecordedJournal(journal)
        self._results: typing.Dict[int, Result] = dict(self._recorded.results)
        self._next_command = 1
        self._next_index = self._recorded.last_index + 1
        self._pending = Batch(create=create)
        self._flush_lock = asyncio.Lock()
        self._mailbox_lock = asyncio.Lock()
        self._mailbox_after = 0
        self._wakeups = wakeups
        self._waiters: typing.Dict[int, asyncio.Future[None]] = {}
        #: Invocations this one called (Call commands), to cancel with it.
        self._calls: typing.Dict[int, str] = {}
        self._children_cancelled = False
        #: Entry type of the journaled completion of commands completed from outside, if not a Call.
        self._completion_types: typing.Dict[int, str] = {}
        self._runs: typing.Dict[int, asyncio.Task[None]] = {}
        self._timers: typing.Dict[int, typing.Tuple[datetime, asyncio.TimerHandle]] = {}
        #: The object key's stored state, once read (or handed over eagerly when the attempt began).
        self._state_loaded: typing.Optional[typing.Dict[str, bytes]] = state
        self._state_overlay: typing.Dict[str, typing.Optional[bytes]] = {}
        self._state_cleared = False
        self._random: typing.Optional[Random] = None
        self._finished = _FinishedEvent()
        self._closed = False
        #: Why the attempt failed, when the handler could not be told with a normal exception.
        self.fatal: typing.Optional[BaseException] = None
        #: The metrics' labels of this invocation.
        self.labels = (invocation.service, invocation.handler)
        self._ingest(mailbox)

    # -- the invocation ----------------------------------------------------------------------

    @property
    def invocation_id(self) -> str:
        return self._invocation.id

    def is_replaying(self) -> bool:
        """Whether the handler has yet to issue some recorded command: the code it runs now ran in
        an earlier attempt (whose log lines `restate.getLogger` loggers do not repeat)."""
        return self._next_command <= self._recorded.last_command

    def request(self) -> Request:
        headers = dict(self._invocation.headers)
        return Request(
            id=self._invocation.id,
            headers=headers,
            attempt_headers=headers,
            body=self._invocation.input,
            attempt_finished_event=self._finished,
            idempotency_key=self._invocation.idempotency_key,
        )

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

    # -- commands ----------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise SdkInternalException("this attempt has ended; the context can no longer be used")

    def _issue(
        self, entry_type: str, name: typing.Optional[str] = None, params: typing.Optional[dict] = None
    ) -> typing.Tuple[int, typing.Optional[JournalRow]]:
        """Number the next command and find its recording, or fail the attempt on a mismatch."""
        self._check_open()
        _refuse_unstorable(entry_type, name, params)
        command = self._next_command
        self._next_command += 1
        try:
            return command, self._recorded.match(command, entry_type, name, params)
        except NonDeterminismError as exc:
            self._fail_attempt(exc)
            raise AttemptFailed(exc.message) from None

    def _fail_attempt(self, exc: BaseException) -> None:
        if self.fatal is None:
            self.fatal = exc

    def _append(self, row: JournalRow) -> None:
        self._pending.journal.append(row)

    def _position(self) -> int:
        index = self._next_index
        self._next_index += 1
        return index

    def _resolve(self, command: int, result: Result) -> None:
        if command in self._results:
            return
        self._results[command] = result
        waiter = self._waiters.get(command)
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # -- ctx.run ---------------------------------------------------------------------------

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
            serde = serde.with_maybe_type(options.type_hint)
        command, _ = self._issue("Run", name)
        future: DurableFuture[T] = DurableFuture(self, command, serde.deserialize)
        if command not in self._results:
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
                result = Result(serde.serialize(value))
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
                delay = self._run_retry_delay(options, tries)
                if isinstance(exc, RetryableError) and exc.retry_after is not None:
                    delay = exc.retry_after.total_seconds()
                logger.info("ctx.run %r of %s failed (try %d), retrying in %.3fs: %r", name, self.invocation_id, tries, delay, exc)
                await asyncio.sleep(delay)
        self._check_open()
        index = self._position()
        self._append(
            JournalRow(
                index=index,
                command_index=command,
                completes=None,
                entry_type="Run",
                name=name,
                completed=True,
                value=result.value,
                failure=result.failure,
            )
        )
        await self.flush()  # the result must be durable before the handler sees it
        METRICS.observe(METRICS.run_duration, self.labels, time.monotonic() - started)
        self._resolve(command, Result(result.value, result.failure, index))

    # -- database steps --------------------------------------------------------------------

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
        command, _ = self._issue("Run", name, _IN_TRANSACTION)
        future: DurableFuture[T] = DurableFuture(self, command, serde.deserialize)
        if command not in self._results:
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
        lease, queries = self._lease, self._host.store.q
        sealed: typing.List[typing.Tuple[Batch, JournalRow]] = []

        def seal(value: typing.Any, error: typing.Optional[TerminalError]) -> typing.Tuple[str, typing.Dict[str, typing.Any]]:
            self._check_open()
            raw = serde.serialize(value) if error is None else None
            failure = None if error is None else Failure(error.status_code, error.message, error.metadata)
            row = JournalRow(index=self._position(), command_index=command, completes=None, entry_type="Run",
                             name=name, params=_IN_TRANSACTION, completed=True, value=raw, failure=failure)
            self._append(row)
            batch, self._pending = self._pending, Batch()
            sealed.append((batch, row))
            return queries.FLUSH_IN_TRANSACTION, {"requests": orjson.dumps([{"flush": flush_request(lease, batch)}]).decode()}

        fence = {"id": lease.invocation_id, "owner": lease.owner, "epoch": lease.epoch}
        try:
            applied, db_epoch = await binding.transact(Step((queries.FENCE, fence), seal), action, args, kwargs)
        except BaseException as exc:
            for batch, row in sealed:  # not committed: the buffered writes wait for the next flush
                batch.journal.remove(row)
                self._pending = _merge(batch, self._pending)
            if isinstance(exc, (SdkInternalBaseException, asyncio.CancelledError)) or not isinstance(exc, Exception):
                raise
            if is_fenced(exc):
                raise Fenced(f"database step {name!r}: this attempt lost its lease") from None
            self._fail_attempt(exc)
            raise AttemptFailed(f"database step {name!r} failed: {exc!r}") from exc
        batch, row = sealed[0]
        db_now = datetime.fromtimestamp(float(db_epoch), timezone.utc)
        self._committed(batch, flush_result(batch, orjson.loads(applied)[0], db_now))
        METRICS.observe(METRICS.run_duration, self.labels, time.monotonic() - started)
        self._resolve(command, Result(row.value, row.failure, row.index))

    @staticmethod
    def _run_retry_delay(options: RunOptions[typing.Any], tries: int) -> float:
        initial = options.initial_retry_interval.total_seconds() if options.initial_retry_interval else _RUN_INITIAL_INTERVAL
        factor = options.retry_interval_factor if options.retry_interval_factor is not None else _RUN_FACTOR
        cap = options.max_retry_interval.total_seconds() if options.max_retry_interval else _RUN_MAX_INTERVAL
        return min(cap, initial * factor ** (tries - 1))

    # -- timers ----------------------------------------------------------------------------

    def sleep(self, delta: timedelta, name: typing.Optional[str] = None) -> DurableSleepFuture:
        command, recorded = self._issue("Sleep", name)
        if recorded is not None and recorded.sleep_wakeup_at is not None:
            wake_at = recorded.sleep_wakeup_at
        else:
            wake_at = self._host.clock.now() + delta
            self._append(
                JournalRow(
                    index=self._position(),
                    command_index=command,
                    completes=None,
                    entry_type="Sleep",
                    name=name,
                    params={"duration_ms": int(delta.total_seconds() * 1000)},
                    sleep_wakeup_at=wake_at,
                )
            )
        if command not in self._results:
            self._arm_timer(command, wake_at)
        return DurableSleepFuture(self, command, lambda _: None)

    def _arm_timer(self, command: int, wake_at: datetime) -> None:
        delay = self._host.clock.seconds_until(wake_at)
        if delay <= 0:
            self._fire_timer(command, wake_at)
            return
        handle = asyncio.get_running_loop().call_later(delay, self._fire_timer, command, wake_at)
        self._timers[command] = (wake_at, handle)

    def _fire_timer(self, command: int, wake_at: datetime) -> None:
        self._timers.pop(command, None)
        if self._closed or command in self._results:
            return
        METRICS.observe(METRICS.timer_lateness, self.labels, max(0.0, -self._host.clock.seconds_until(wake_at)))
        index = self._position()
        self._append(
            JournalRow(index=index, command_index=None, completes=command, entry_type="Sleep", completed=True, value=b"")
        )
        self._resolve(command, Result(b"", None, index))

    # -- awakeables ------------------------------------------------------------------------

    def awakeable(self, serde=DefaultSerde(), type_hint=None):  # type: ignore[no-untyped-def]
        if isinstance(serde, DefaultSerde):
            serde = serde.with_maybe_type(type_hint)
        command, recorded = self._issue("Awakeable")
        if recorded is not None:
            awakeable_id = (recorded.value or b"").decode()
        else:
            awakeable_id = new_awakeable_id(self.invocation_id, command)
            self._append(
                JournalRow(index=self._position(), command_index=command, completes=None, entry_type="Awakeable",
                           value=awakeable_id.encode())
            )
        self._completion_types[command] = "Awakeable"
        return awakeable_id, DurableFuture(self, command, serde.deserialize)

    def resolve_awakeable(self, name, value, serde=DefaultSerde()):  # type: ignore[no-untyped-def]
        raw = serde.serialize(value)
        self._complete_awakeable(name, raw, None)

    def reject_awakeable(self, name, failure_message, failure_code=500):  # type: ignore[no-untyped-def]
        self._complete_awakeable(name, None, Failure(failure_code, failure_message))

    def _complete_awakeable(self, awakeable_id: str, value: typing.Optional[bytes], failure: typing.Optional[Failure]) -> None:
        """Journal the completion; it is delivered in the transaction of the next flush."""
        try:
            target, target_command = parse_awakeable_id(awakeable_id)
        except ValueError:
            raise TerminalError(f"bad awakeable id '{awakeable_id}'", 400) from None
        command, recorded = self._issue("CompleteAwakeable", None, {"id": awakeable_id})
        if recorded is None:
            self._append(
                JournalRow(index=self._position(), command_index=command, completes=None, entry_type="CompleteAwakeable",
                           params={"id": awakeable_id}, completed=True, value=value, failure=failure)
            )
            self._pending.resolutions.append(Resolution(awakeable_id, target, target_command, value, failure))

    # -- durable promises (workflows) ------------------------------------------------------

    def promise(self, name, serde=DefaultSerde(), type_hint=None):  # type: ignore[no-untyped-def]
        if self._handler.service.service_type != "workflow":
            self._fail_attempt(RetryableError("only Workflow services support durable promises"))
            raise AttemptFailed("only Workflow services support durable promises")
        if isinstance(serde, DefaultSerde):
            serde = serde.with_maybe_type(type_hint)
        return RuntimePromise(self, name, serde)

    def _promise_key(self) -> typing.Tuple[str, str]:
        return self._handler.service.name, self._invocation.key or ""

    def promise_get(self, name: str, peek: bool, decode: typing.Callable[[typing.Optional[bytes]], T]) -> DurableFuture[T]:
        entry_type = "PeekPromise" if peek else "GetPromise"
        command, recorded = self._issue(entry_type, None, {"name": name})
        if recorded is None:
            self._append(JournalRow(index=self._position(), command_index=command, completes=None,
                                    entry_type=entry_type, params={"name": name}))
        self._completion_types[command] = entry_type
        if command not in self._results:  # asked again on replay: the answer is idempotent
            self._pending.promise_key = self._promise_key()
            self._pending.promise_gets.append(PromiseGet(name, command, peek))
        return DurableFuture(self, command, decode)

    def promise_complete(self, name: str, value: typing.Optional[bytes], failure: typing.Optional[Failure]) -> DurableFuture[None]:
        command, recorded = self._issue("CompletePromise", None, {"name": name})
        if recorded is None:
            self._append(JournalRow(index=self._position(), command_index=command, completes=None,
                                    entry_type="CompletePromise", params={"name": name}, value=value, failure=failure))
        self._completion_types[command] = "CompletePromise"
        if command not in self._results:
            self._pending.promise_key = self._promise_key()
            self._pending.promise_completions.append(PromiseCompletion(name, command, value, failure))
        return DurableFuture(self, command, lambda _: None)

    def _answered(self, outcomes: typing.Mapping[int, typing.Any], peeks: typing.Set[int]) -> None:
        """Journal and deliver what a flush answered to this attempt's promise and attach commands,
        and to calls that attached to an existing invocation."""
        for command, outcome in sorted(outcomes.items()):
            if command in self._results:
                continue
            if outcome == "completed":
                result = Result(b"", None)
            elif outcome == "already":
                result = Result(None, Failure(409, "promise was already completed"))
            elif outcome.get("missing"):
                result = Result(None, Failure(404, "invocation not found"))
            elif outcome.get("completed"):
                code = outcome.get("failure_code")
                if code is not None:
                    result = Result(None, Failure(code, outcome.get("failure_message") or "", outcome.get("failure_metadata")))
                else:
                    raw = outcome.get("value")
                    result = Result(None if raw is None else base64.b64decode(raw), None)
            elif command in peeks:
                result = Result(None, None)  # not completed yet: peek() answers None
            else:
                continue  # the completion will put the result in the mailbox
            index = self._position()
            self._append(JournalRow(index=index, command_index=None, completes=command,
                                    entry_type=self._completion_types.get(command, "Call"), completed=True,
                                    value=result.value, failure=result.failure))
            self._resolve(command, Result(result.value, result.failure, index))

    def cancel_invocation(self, invocation_id: str) -> None:
        """Journal a cancellation of `invocation_id`; it is sent with the next flush."""
        command, recorded = self._issue("CancelInvocation", None, {"invocation_id": invocation_id})
        if recorded is None:
            self._append(JournalRow(index=self._position(), command_index=command, completes=None,
                                    entry_type="CancelInvocation", params={"invocation_id": invocation_id},
                                    completed=True))
            self._pending.cancels.append(invocation_id)

    def _raise_if_cancelled(self) -> None:
        """At an await that has to wait: a cancelled invocation stops here, with its children."""
        if CANCEL_SIGNAL not in self._results:
            return
        if not self._children_cancelled:
            self._children_cancelled = True  # sent with the next flush; repeated on replay, harmlessly
            self._pending.cancels.extend(
                callee for command, callee in sorted(self._calls.items()) if command not in self._results)
        raise TerminalError("cancelled", 409)

    def attach_invocation(self, invocation_id, serde=DefaultSerde(), type_hint=None):  # type: ignore[no-untyped-def]
        if isinstance(serde, DefaultSerde):
            serde = serde.with_maybe_type(type_hint)
        command, recorded = self._issue("AttachInvocation", None, {"invocation_id": invocation_id})
        if recorded is None:
            self._append(JournalRow(index=self._position(), command_index=command, completes=None,
                                    entry_type="AttachInvocation", params={"invocation_id": invocation_id}))
        self._completion_types[command] = "AttachInvocation"
        if command not in self._results:  # asked again on replay: the answer is idempotent
            self._pending.attaches.append((invocation_id, command))
        return DurableFuture(self, command, serde.deserialize)

    # -- calls -----------------------------------------------------------------------------

    def _target(self, service: str, handler: str) -> Handler:
        target = self._host.app.handler(service, handler)
        if target is None:  # as in Restate: the caller's attempt fails and is retried
            message = f"the service handler {service}/{handler} was not found"
            self._fail_attempt(RetryableError(message, 404))
            raise AttemptFailed(message)
        return target

    def _outgoing(
        self,
        kind: typing.Literal["Call", "OneWayCall"],
        target: Handler,
        key: typing.Optional[str],
        payload: bytes,
        idempotency_key: typing.Optional[str],
        headers: typing.Optional[typing.Dict[str, str]],
        delay: typing.Optional[timedelta],
    ) -> typing.Tuple[int, str]:
        if target.service.is_keyed and key is None:
            raise TerminalError(f"{target.service_name} is keyed: pass the key of the object or workflow")
        _refuse_unstorable(kind, None, {"idempotency key": idempotency_key, **{f"header {n}": v for n, v in (headers or {}).items()}})
        _refuse_unstorable(kind, None, {f"header name {n!r}": n for n in headers or {}})
        params = {"service": target.service_name, "handler": target.name, "key": key}
        command, recorded = self._issue(kind, None, params)
        if recorded is not None:
            callee = (recorded.params or {})["invocation_id"]
            if kind == "Call":
                self._calls[command] = callee
            return command, callee
        callee = invocation_id_for(target, key, idempotency_key)
        self._append(
            JournalRow(
                index=self._position(),
                command_index=command,
                completes=None,
                entry_type=kind,
                params={**params, "invocation_id": callee},
                completed=kind == "OneWayCall",
                value=b"" if kind == "OneWayCall" else None,
            )
        )
        submission = new_submission(
            target, key, payload, idempotency_key=idempotency_key, headers=headers,
            delay_ms=int(delay.total_seconds() * 1000) if delay else None, invoked_by="service",
            caller_id=self.invocation_id if kind == "Call" else None,
            caller_command=command if kind == "Call" else None, invocation_id=callee,
        )
        tracing.outgoing(submission.headers, kind, callee, target.service_name, target.name, key)
        if submission.delay_ms is None and self._host.reserve_local(submission):
            submission.owner = self._host.worker_id
            submission.deployment = self._host.deployment_id
        self._pending.submissions.append(submission)
        if kind == "OneWayCall":
            self._results[command] = Result(b"", None, self._next_index - 1)
        else:
            self._calls[command] = callee
        return command, callee

    def _call(self, tpe: typing.Any, key: typing.Optional[str], arg: typing.Any, idempotency_key: typing.Optional[str], headers: typing.Optional[typing.Dict[str, str]]) -> DurableCallFuture[typing.Any]:
        target = handler_of(tpe)
        payload = target.input_serde.serialize(arg)
        command, callee = self._outgoing("Call", target, key, payload, idempotency_key, headers, None)
        return DurableCallFuture(self, command, target.output_serde.deserialize, callee)

    def _send(self, tpe: typing.Any, key: typing.Optional[str], arg: typing.Any, send_delay: typing.Optional[timedelta], idempotency_key: typing.Optional[str], headers: typing.Optional[typing.Dict[str, str]]) -> DurableSendHandle:
        target = handler_of(tpe)
        payload = target.input_serde.serialize(arg)
        _, callee = self._outgoing("OneWayCall", target, key, payload, idempotency_key, headers, send_delay)
        return DurableSendHandle(self, callee)

    def service_call(self, tpe, arg, idempotency_key=None, headers=None):  # type: ignore[no-untyped-def]
        return self._call(tpe, None, arg, idempotency_key, headers)

    def object_call(self, tpe, key, arg, idempotency_key=None, headers=None):  # type: ignore[no-untyped-def]
        return self._call(tpe, key, arg, idempotency_key, headers)

    def workflow_call(self, tpe, key, arg, idempotency_key=None, headers=None):  # type: ignore[no-untyped-def]
        return self._call(tpe, key, arg, idempotency_key, headers)

    def service_send(self, tpe, arg, send_delay=None, idempotency_key=None, headers=None):  # type: ignore[no-untyped-def]
        return self._send(tpe, None, arg, send_delay, idempotency_key, headers)

    def object_send(self, tpe, key, arg, send_delay=None, idempotency_key=None, headers=None):  # type: ignore[no-untyped-def]
        return self._send(tpe, key, arg, send_delay, idempotency_key, headers)

    def workflow_send(self, tpe, key, arg, send_delay=None, idempotency_key=None, headers=None):  # type: ignore[no-untyped-def]
        return self._send(tpe, key, arg, send_delay, idempotency_key, headers)

    def generic_call(self, service, handler, arg, key=None, idempotency_key=None, headers=None, scope=None, limit_key=None):  # type: ignore[no-untyped-def]
        target = self._target(service, handler)
        command, callee = self._outgoing("Call", target, key, bytes(arg), idempotency_key, headers, None)
        return DurableCallFuture(self, command, BytesSerde().deserialize, callee)

    def generic_send(self, service, handler, arg, key=None, send_delay=None, idempotency_key=None, headers=None, scope=None, limit_key=None):  # type: ignore[no-untyped-def]
        target = self._target(service, handler)
        _, callee = self._outgoing("OneWayCall", target, key, bytes(arg), idempotency_key, headers, send_delay)
        return DurableSendHandle(self, callee)

    # -- state -----------------------------------------------------------------------------

    def _require_state(self, write: bool) -> typing.Tuple[str, str]:
        service = self._handler.service
        if not service.is_keyed:
            self._fail_attempt(RetryableError("this service type doesn't have state access"))
            raise AttemptFailed("this service type doesn't have state access")
        if write and self._handler.kind == "shared":
            self._fail_attempt(RetryableError("this handler type cannot write state"))
            raise AttemptFailed("this handler type cannot write state")
        return service.name, self._invocation.key or ""

    def _current(self, name: str) -> typing.Tuple[bool, typing.Optional[bytes]]:
        """The value of `name` if this attempt already knows it without a database read."""
        if name in self._state_overlay:
            return True, self._state_overlay[name]
        if self._state_cleared:
            return True, None
        if self._state_loaded is not None:
            return True, self._state_loaded.get(name)
        return False, None

    def known_state(self) -> typing.Optional[typing.Dict[str, bytes]]:
        """The key's whole state as this attempt's writes leave it, if the attempt knows all of it.

        Handed to the next invocation of the key when it starts here right after this one
        completes (the key passes directly between them, so nothing else can change it)."""
        if self._state_cleared:
            state: typing.Dict[str, bytes] = {}
        elif self._state_loaded is not None:
            state = dict(self._state_loaded)
        else:
            return None
        for name, value in self._state_overlay.items():
            if value is None:
                state.pop(name, None)
            else:
                state[name] = value
        return state

    async def _load_state(self) -> typing.Dict[str, bytes]:
        if self._state_loaded is None:
            service, key = self._require_state(False)
            self._state_loaded = await self._host.store.load_state(service, key)
        return self._state_loaded

    def get(self, name, serde=DefaultSerde(), type_hint=None, entry_name=None):  # type: ignore[no-untyped-def]
        self._require_state(False)
        if isinstance(serde, DefaultSerde):
            serde = serde.with_maybe_type(type_hint)
        command, recorded = self._issue("GetState", entry_name, {"name": name})
        known, raw = self._current(name)
        if recorded is not None:
            known, raw = True, recorded.value

        async def read() -> typing.Any:
            value = raw
            if not known:
                value = (await self._load_state()).get(name)
            if recorded is None:
                self._append(
                    JournalRow(
                        index=self._position(), command_index=command, completes=None, entry_type="GetState",
                        name=entry_name, params={"name": name}, completed=True, value=value,
                    )
                )
            return None if value is None else serde.deserialize(value)

        return read()

    def state_keys(self, entry_name=None):  # type: ignore[no-untyped-def]
        self._require_state(False)
        command, recorded = self._issue("GetStateKeys", entry_name)

        async def read() -> typing.List[str]:
            if recorded is not None:
                return JsonSerde().deserialize(recorded.value or b"") or []
            loaded = {} if self._state_cleared else await self._load_state()
            names = {n for n in loaded if self._state_overlay.get(n, b"") is not None}
            names |= {n for n, v in self._state_overlay.items() if v is not None}
            keys = sorted(names)
            self._append(
                JournalRow(
                    index=self._position(), command_index=command, completes=None, entry_type="GetStateKeys",
                    name=entry_name, completed=True, value=JsonSerde().serialize(keys),
                )
            )
            return keys

        return read()

    def set(self, name, value, serde=DefaultSerde(), entry_name=None):  # type: ignore[no-untyped-def]
        service, key = self._require_state(True)
        raw = serde.serialize(value)
        command, recorded = self._issue("SetState", entry_name, {"name": name})
        self._state_overlay[name] = raw
        if recorded is None:
            self._append(JournalRow(index=self._position(), command_index=command, completes=None, entry_type="SetState", name=entry_name, params={"name": name}, completed=True, value=raw))
            self._pending.state.append((service, key, StateOp("set", name, raw)))

    def clear(self, name, entry_name=None):  # type: ignore[no-untyped-def]
        service, key = self._require_state(True)
        command, recorded = self._issue("ClearState", entry_name, {"name": name})
        self._state_overlay[name] = None
        if recorded is None:
            self._append(JournalRow(index=self._position(), command_index=command, completes=None, entry_type="ClearState", name=entry_name, params={"name": name}, completed=True))
            self._pending.state.append((service, key, StateOp("clear", name)))

    def clear_all(self, entry_name=None):  # type: ignore[no-untyped-def]
        service, key = self._require_state(True)
        command, recorded = self._issue("ClearAllState", entry_name)
        self._state_overlay.clear()
        self._state_cleared = True
        if recorded is None:
            self._append(JournalRow(index=self._position(), command_index=command, completes=None, entry_type="ClearAllState", name=entry_name, completed=True))
            self._pending.state.append((service, key, StateOp("clear_all")))

    # -- waiting ---------------------------------------------------------------------------

    async def wait_for(self, future: DurableFuture[typing.Any]) -> Result:
        """The result of `future`'s command: recorded, arriving in memory, or after a suspension."""
        command = future.command_index
        if command not in self._results:
            future.start()
        while command not in self._results:
            self._check_open()
            run = self._runs.get(command)
            if run is not None:  # a ctx.run under way finishes even when cancelled
                await asyncio.shield(run)
                continue
            self._raise_if_cancelled()
            await self.flush()  # nothing may wait in memory only
            if command not in self._results:  # it may have completed while we were flushing
                await self._wait_live(command)
        return self._results[command]

    async def wait_any(self, futures: typing.Sequence[DurableFuture[typing.Any]]) -> None:
        """Return once at least one of `futures` has a result (the combinators' primitive)."""
        commands = [f.command_index for f in futures]
        for future in futures:
            if future.command_index not in self._results:
                future.start()
        while not any(c in self._results for c in commands):
            self._check_open()
            self._raise_if_cancelled()
            await self.flush()  # nothing may wait in memory only
            if not any(c in self._results for c in commands):
                await self._wait_live(commands)

    def completion_position(self, future: DurableFuture[typing.Any]) -> typing.Optional[int]:
        """Where the result of `future` sits in the journal, or None while it has none.

        Combinators order completions by it, so that a replay, which finds them all recorded,
        picks the same winner as the first execution did."""
        result = self._results.get(future.command_index)
        return None if result is None else result.position

    async def _wait_live(self, commands: typing.Union[int, typing.Sequence[int]]) -> None:
        """Wait in memory, then suspended, until one of `commands` has a result."""
        if isinstance(commands, int):
            commands = [commands]
        loop = asyncio.get_running_loop()
        waiters = []
        for command in commands:
            waiter = self._waiters.get(command)
            if waiter is None or waiter.done():
                waiter = self._waiters[command] = loop.create_future()
            waiters.append(waiter)
        in_memory = self._host.attempt_waiting(True)
        inactivity = self._inactivity_timeout() if in_memory else 0.0
        deadline = loop.time() + inactivity
        try:
            while not any(c in self._results for c in commands):
                self._check_open()
                if CANCEL_SIGNAL in self._results and not any(c in self._runs for c in commands):
                    return  # the caller raises the cancellation
                running = any(c in self._runs and not self._runs[c].done() for c in commands)
                remaining = deadline - loop.time()
                if remaining <= 0 and not running:  # a ctx.run in progress keeps the attempt here
                    if await self._try_suspend():
                        raise SuspendedException()
                    deadline = loop.time() + inactivity
                    continue
                timeout = self._host.poll_interval if running else min(remaining, self._host.poll_interval)
                done, _ = await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
                if not done and any(c not in self._timers and c not in self._runs for c in commands):
                    await self.read_mailbox()  # the fallback when a wake-up NOTIFY was lost
        finally:
            if in_memory:
                self._host.attempt_waiting(False)

    def _waiters_pending(self) -> bool:
        """Whether some awaited command can only be completed from outside (a call's result)."""
        return any(c not in self._results for c in self._waiters)

    def _inactivity_timeout(self) -> float:
        configured = self._host.setting(self._handler, "inactivity_timeout")
        return configured.total_seconds() if configured is not None else self._host.default_inactivity_timeout

    def wake(self) -> None:
        """Something arrived in this invocation's mailbox: read it."""
        if not self._closed:
            self._host.background(self.read_mailbox(), "mailbox read", "the attempt reads its mailbox at its next poll")

    async def read_mailbox(self) -> None:
        async with self._mailbox_lock:
            if self._closed:
                return
            wakeups, items = await self._host.store.read_mailbox(self.invocation_id, self._mailbox_after)
            if wakeups is not None:
                self._wakeups = max(self._wakeups, wakeups)
            self._ingest(items)

    def _ingest(self, items: typing.Iterable[MailboxItem]) -> None:
        for item in items:
            if item.seq <= self._mailbox_after:
                continue
            self._mailbox_after = item.seq
            self._pending.consumed.append(item.seq)
            if item.command_index is None or item.command_index in self._results:
                continue
            if item.command_index == CANCEL_SIGNAL:
                index = self._position()
                self._append(JournalRow(index=index, command_index=None, completes=CANCEL_SIGNAL,
                                        entry_type="Cancel", completed=True))
                self._results[CANCEL_SIGNAL] = Result(None, None, index)
                for waiter in self._waiters.values():  # every wait ends, to raise the cancellation
                    if not waiter.done():
                        waiter.set_result(None)
                continue
            index = self._position()
            recorded = self._recorded.commands.get(item.command_index)
            timer = self._timers.pop(item.command_index, None)
            if timer is not None:  # a sleep fired from outside (Engine.fire_timers)
                timer[1].cancel()
            entry_type = self._completion_types.get(item.command_index) or (
                recorded.entry_type if recorded is not None else "Sleep" if timer is not None else "Call")
            self._append(
                JournalRow(index=index, command_index=None, completes=item.command_index, entry_type=entry_type,
                           completed=True, value=item.value, failure=item.failure)
            )
            self._resolve(item.command_index, Result(item.value, item.failure, index))

    async def _try_suspend(self) -> bool:
        """End the attempt until a timer or a notification; False when one already arrived."""
        if not self._timers and not self._waiters_pending():
            raise RuntimeError("restate-pg bug: suspending with nothing to wait for would never wake")
        wake_at = min((at for at, _ in self._timers.values()), default=None)
        result = await self.flush(Suspend(wake_at, self._wakeups))
        if result is not None and result.suspended:
            self.close()
            return True
        await self.read_mailbox()
        return False

    # -- writing ---------------------------------------------------------------------------

    async def flush(self, outcome: typing.Optional[Outcome] = None):  # type: ignore[no-untyped-def]
        """Write everything buffered, plus `outcome`, in one fenced transaction."""
        async with self._flush_lock:
            batch, self._pending = self._pending, Batch()
            batch.outcome = outcome
            if batch.empty():
                return None
            try:
                result = await self._host.store.flush(self._lease, batch)
            except BaseException:
                # Not written: keep it for the next flush so nothing is silently dropped.
                batch.outcome = None
                self._pending = _merge(batch, self._pending)
                raise
            self._committed(batch, result)
            return result

    def _committed(self, batch: Batch, result: FlushResult) -> None:
        """Act on a committed flush of `batch`."""
        self._host.clock.sync(result.db_now)
        self._host.after_flush(batch, result, self._lease)
        if result.answers:
            self._answered(result.answers, {g.command_index for g in batch.promise_gets if g.peek})

    def close(self) -> None:
        """The attempt is over: stop timers, refuse further use."""
        self._closed = True
        for _, handle in self._timers.values():
            handle.cancel()
        self._timers.clear()
        for run in self._runs.values():
            if not run.done():
                run.cancel()
        for waiter in self._waiters.values():
            if not waiter.done():
                waiter.cancel()
        self._finished.set()


def _refuse_unstorable(entry_type: str, name: typing.Optional[str], params: typing.Optional[typing.Mapping[str, typing.Any]]) -> None:
    """A NUL character cannot be stored in PostgreSQL's text or jsonb: refuse it with a terminal
    400 where the handler asks for it, rather than fail every flush (and retry) forever."""
    for field, value in (("name", name), *(params or {}).items()):
        if isinstance(value, str) and "\x00" in value:
            raise TerminalError(
                f"{entry_type}: the {field} contains a NUL character (\\u0000), which PostgreSQL cannot store", 400)


def _merge(first: Batch, second: Batch) -> Batch:
    return Batch(
        create=first.create or second.create,
        journal=first.journal + second.journal,
        state=first.state + second.state,
        submissions=first.submissions + second.submissions,
        consumed=first.consumed + second.consumed,
        resolutions=first.resolutions + second.resolutions,
        promise_key=first.promise_key or second.promise_key,
        promise_gets=first.promise_gets + second.promise_gets,
        promise_completions=first.promise_completions + second.promise_completions,
        attaches=first.attaches + second.attaches,
        cancels=first.cancels + second.cancels,
    )
