"""`ContextCore`: the asyncio side of an attempt, which drives its `JournalMachine`.

What is journaled is the machine's business (`runtime/machine.py`); this holds what the machine
cannot, because it waits or does I/O: the waiters of awaited commands, the timers of sleeps, the
`ctx.run` tasks, the flush lock, mailbox reads, and the suspension when nothing happens in time.
The context's command groups (`runs.py`, `calls.py`, `state.py`, `context.py`) build on it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import typing
from datetime import datetime

from restate_pg.api.context import AttemptFinishedEvent
from restate_pg.api.definitions import Handler
from restate_pg.api.entry_codec import JournalValueCodec, decoded, encoded
from restate_pg.api.errors import SdkInternalException, SuspendedException
from restate_pg.observability import logs
from restate_pg.observability.metrics import METRICS
from restate_pg.runtime.futures import DurableFuture
from restate_pg.runtime.host import Host
from restate_pg.runtime.journal import NonDeterminismError, Result
from restate_pg.runtime.machine import JournalMachine
from restate_pg.runtime.typed import refuse_mistyped
from restate_pg.core.records import (
    CANCEL_SIGNAL,
    Batch,
    Complete,
    Failure,
    FlushResult,
    InvocationRecord,
    JournalRow,
    Lease,
    MailboxItem,
    Outcome,
    Submission,
    Suspend,
)

logger = logs.internal_logger("restate_pg.runtime")

P = typing.ParamSpec("P")
R = typing.TypeVar("R")


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


class ContextCore:
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
        self._machine = JournalMachine(journal, create, state)
        self._flush_lock = asyncio.Lock()
        self._mailbox_lock = asyncio.Lock()
        self._wakeups = wakeups
        self._waiters: typing.Dict[int, asyncio.Future[None]] = {}
        self._runs: typing.Dict[int, asyncio.Task[None]] = {}
        self._timers: typing.Dict[int, typing.Tuple[datetime, asyncio.TimerHandle]] = {}
        self._finished = _FinishedEvent()
        #: Why the attempt failed, when the handler could not be told with a normal exception.
        self.fatal: typing.Optional[BaseException] = None
        #: The terminal failure of a refused awakeable resolution, which ends the invocation.
        self.refused: typing.Optional[Failure] = None
        #: The metrics' labels of this invocation.
        self.labels = (invocation.service, invocation.handler)
        #: Whether the attempt suspended (committed): it ends so, whatever the handler raises then.
        self.suspended = False
        #: The app's journal value codec, set before the handler runs (`Attempt._invoke`).
        self.codec: typing.Optional[JournalValueCodec] = None
        #: What libraries keep for the attempt's duration (`restate_pg.ext`); a value's
        #: `__close__` is called when the handler returns, as restate-sdk's extension data.
        self.extension_data: typing.Dict[str, typing.Any] = {}
        #: The request headers this attempt sees: the invocation's, the attempt's trace context in them.
        self.attempt_headers: typing.Dict[str, str] = dict(invocation.headers)
        self._catch_up(mailbox)

    @property
    def invocation_id(self) -> str:
        return self._invocation.id

    # -- driving the machine -----------------------------------------------------------------

    def _command(self, step: typing.Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        """Issue a command through the machine; a non-determinism fails the attempt (it is
        retried), and the handler is unwound with an exception it must not swallow."""
        try:
            return step(*args, **kwargs)
        except NonDeterminismError as exc:
            self._fail_attempt(exc)
            raise AttemptFailed(exc.message) from None

    def _encode(self, raw: bytes) -> bytes:
        """A serialized value as journaled: through the app's codec, if it has one."""
        return encoded(self.codec, raw)

    async def decoded(self, raw: typing.Optional[bytes]) -> typing.Optional[bytes]:
        """A journaled value as serialized: through the app's codec, if it has one."""
        return await decoded(self.codec, raw)

    def _check_open(self) -> None:
        self._machine.check_open()

    def _fail_attempt(self, exc: BaseException) -> None:
        if self.fatal is None:
            self.fatal = exc

    def _resolve(self, command: int, result: Result) -> None:
        if self._machine.resolve(command, result):
            self._wake_waiters([command])

    def _wake_waiters(self, commands: typing.Iterable[int]) -> None:
        """Commands were completed: end the waits for them (every wait, on the cancel signal, so
        that it raises the cancellation)."""
        for command in commands:
            waiters = self._waiters.values() if command == CANCEL_SIGNAL else [self._waiters.get(command)]
            for waiter in waiters:
                if waiter is not None and not waiter.done():
                    waiter.set_result(None)

    # -- waiting -----------------------------------------------------------------------------

    async def wait_for(self, future: DurableFuture[typing.Any]) -> Result:
        """The result of `future`'s command: recorded, arriving in memory, or after a suspension."""
        command = future.command_index
        machine = self._machine
        if not machine.is_done(command):
            future.start()
        while not machine.is_done(command):
            self._check_open()
            run = self._runs.get(command)
            if run is not None:  # a ctx.run under way finishes even when cancelled
                await asyncio.shield(run)
                continue
            machine.raise_if_cancelled()
            await self.flush()  # nothing may wait in memory only
            if not machine.is_done(command):  # it may have completed while we were flushing
                await self._wait_live([command])
        machine.reveal([command])
        return machine.results[command]

    async def wait_any(self, futures: typing.Sequence[DurableFuture[typing.Any]]) -> None:
        """Return once at least one of `futures` has a result, the earliest of them visible to
        the combinators (their primitive)."""
        commands = [f.command_index for f in futures]
        machine = self._machine
        for future in futures:
            if not machine.is_done(future.command_index):
                future.start()
        while not any(machine.is_done(c) for c in commands):
            self._check_open()
            machine.raise_if_cancelled()
            await self.flush()  # nothing may wait in memory only
            if not any(machine.is_done(c) for c in commands):
                await self._wait_live(commands)
        machine.reveal(commands)

    def completion_position(self, future: DurableFuture[typing.Any]) -> typing.Optional[int]:
        """Where the result of `future` sits in the journal, if the handler has reached it
        (see `JournalMachine.reveal`)."""
        return self._machine.visible_position(future.command_index)

    async def _wait_live(self, commands: typing.Sequence[int]) -> None:
        """Wait in memory, then suspended, until one of `commands` has a result."""
        loop = asyncio.get_running_loop()
        machine = self._machine
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
            while not any(machine.is_done(c) for c in commands):
                self._check_open()
                if machine.cancel_requested() and not any(c in self._runs for c in commands):
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
        return any(not self._machine.is_done(c) for c in self._waiters)

    def _inactivity_timeout(self) -> float:
        configured = self._host.setting(self._handler, "inactivity_timeout")
        return configured.total_seconds() if configured is not None else self._host.default_inactivity_timeout

    async def _try_suspend(self) -> bool:
        """End the attempt until a timer or a notification; False when one already arrived."""
        if not self._timers and not self._waiters_pending():
            raise RuntimeError("restate-pg bug: suspending with nothing to wait for would never wake")
        wake_at = min((at for at, _ in self._timers.values()), default=None)
        result = await self.flush(Suspend(wake_at, self._wakeups))
        if result is not None and result.suspended:
            self.suspended = True
            self.close()
            return True
        await self.read_mailbox()
        return False

    # -- timers ------------------------------------------------------------------------------

    def _arm_timer(self, command: int, wake_at: datetime) -> None:
        delay = self._host.clock.seconds_until(wake_at)
        if delay <= 0:
            self._fire_timer(command, wake_at)
            return
        handle = asyncio.get_running_loop().call_later(delay, self._fire_timer, command, wake_at)
        self._timers[command] = (wake_at, handle)

    def _fire_timer(self, command: int, wake_at: datetime) -> None:
        self._timers.pop(command, None)
        if self._machine.closed or self._machine.is_done(command):
            return
        METRICS.observe(METRICS.timer_lateness, self.labels, max(0.0, -self._host.clock.seconds_until(wake_at)))
        self._machine.fire_timer(command)
        self._wake_waiters([command])

    def _catch_up(self, mailbox: typing.Sequence[MailboxItem]) -> None:
        """Journal what happened while no attempt ran, in the order it happened, before the
        handler looks: notifications in the order they were stored, and the recorded sleeps that
        are over, each where its wake-up time falls among them. Sleeps still to come are armed
        now, not when the replay reaches them, so that they fire in the order of their times
        however long the replay takes. Combinators then see what Restate's would: completions in
        the order they arrived, the same on the first execution and on every replay."""
        machine = self._machine
        now = self._host.clock.now()
        sleeps = sorted(
            (row.sleep_wakeup_at, command) for command, row in machine.recorded.commands.items()
            if row.entry_type == "Sleep" and row.sleep_wakeup_at is not None and not machine.is_done(command))
        due = [sleep for sleep in sleeps if sleep[0] <= now]
        for item in mailbox:
            while due and item.at is not None and due[0][0] < item.at:
                self._fire_timer(due[0][1], due.pop(0)[0])
            self._ingest([item])
        for wake_at, command in sleeps:
            if not machine.is_done(command):
                self._arm_timer(command, wake_at)

    # -- the mailbox -------------------------------------------------------------------------

    def wake(self) -> None:
        """Something arrived in this invocation's mailbox: read it."""
        if not self._machine.closed:
            self._host.background(self.read_mailbox(), "mailbox read", "the attempt reads its mailbox at its next poll")

    async def read_mailbox(self) -> None:
        async with self._mailbox_lock:
            if self._machine.closed:
                return
            wakeups, items = await self._host.store.read_mailbox(self.invocation_id, self._machine.mailbox_after)
            if wakeups is not None:
                self._wakeups = max(self._wakeups, wakeups)
            self._ingest(items)

    def _ingest(self, items: typing.Iterable[MailboxItem]) -> None:
        completed = self._machine.ingest(items, self._timers)
        for command in completed:
            timer = self._timers.pop(command, None)
            if timer is not None:  # a sleep fired from outside (Operations.fire_timers)
                timer[1].cancel()
        self._wake_waiters(completed)

    # -- writing -----------------------------------------------------------------------------

    async def flush(self, outcome: typing.Optional[Outcome] = None) -> typing.Optional[FlushResult]:
        """Write everything buffered, plus `outcome`, in one fenced transaction; values for other
        waiters that they could not take are refused first (`runtime/typed.py`)."""
        async with self._flush_lock:
            batch = self._machine.take_batch()
            batch.outcome = outcome
            if batch.empty():
                return None
            try:
                refusals = await refuse_mistyped(self._host.store, batch)
                self.refused = self.refused or refusals.awakeable
                batch.outcome = self._unless_refused(outcome)
                result = await self._host.store.flush(self._lease, batch)
            except BaseException:
                self._machine.restore(batch)  # not written: kept for the next flush
                raise
            result.answers.update(refusals.promises)
            self._committed(batch, result)
            if self.refused is not None and not isinstance(batch.outcome, Complete):
                raise AttemptFailed(self.refused.message)  # Attempt completes it with the refusal
            return result

    def _unless_refused(self, outcome: typing.Optional[Outcome]) -> typing.Optional[Outcome]:
        """`outcome`, unless a refused awakeable resolution ends the invocation: then a success
        becomes that failure, and a suspension or retry gives way to it (written next)."""
        if self.refused is None or outcome is None:
            return outcome
        if isinstance(outcome, Complete):
            return outcome if outcome.failure is not None else dataclasses.replace(outcome, output=None, failure=self.refused)
        return None

    def _committed(self, batch: Batch, result: FlushResult) -> None:
        """Act on a committed flush of `batch`."""
        self._host.clock.sync(result.db_now)
        self._host.after_flush(batch, result, self._lease)
        if result.answers:
            peeks = {g.command_index for g in batch.promise_gets if g.peek}
            self._wake_waiters(self._machine.answer(result.answers, peeks))

    def close(self) -> None:
        """The attempt is over: stop timers, refuse further use."""
        self._machine.closed = True
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
