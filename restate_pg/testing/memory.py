"""Handlers run against an in-memory store: replay, suspension and cancellation without PostgreSQL.

`MemoryStore` implements the runtime's storage port (`runtime/port.py`) with dictionaries, and
`MemoryRuntime` plays the worker's part around it: it starts attempts of the real runtime
(`runtime/attempt.py`, the same context, journal machine and combinators a worker runs) one at a
time, under the test's control. Nothing happens by itself: a call's callee runs when the test runs
it (`run`, `drain`), a sleep ends when the test fires its timer, a cancellation arrives when the
test sends it. By default an attempt suspends as soon as it must wait (inactivity timeout 0), so a
test is a sequence of attempts, each replaying the journal the previous ones wrote.

What it leaves out, being the database's part: inboxes of virtual-object keys (exclusive handlers
of one key run whenever the test runs them), delayed sends (recorded, not scheduled), idempotency
and retention, and database steps (`ctx.run_in_transaction` needs SQL: it is refused).
"""

from __future__ import annotations

import asyncio
import base64
import typing
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from restate_pg.api.app import App
from restate_pg.api.definitions import Handler, handler_of
from restate_pg.core.errors import Fenced
from restate_pg.core.ids import parse_awakeable_id
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
    Resolution,
    Retry,
    Submission,
    Submitted,
    Suspend,
)
from restate_pg.runtime.attempt import Attempt
from restate_pg.runtime.clock import DbClock
from restate_pg.runtime.port import StepStatements
from restate_pg.runtime.submission import new_submission

#: Where the memory clock starts.
EPOCH = datetime(2026, 1, 1, tzinfo=timezone.utc)


class MemoryClock(DbClock):
    """The store's clock: it stands still until the test moves it (`advance`)."""

    def __init__(self, now: datetime = EPOCH) -> None:
        super().__init__()
        self.current = now

    def sync(self, db_now: datetime) -> None:
        """Nothing to learn: the store's time is this clock's."""

    def now(self) -> datetime:
        return self.current

    def latest(self) -> datetime:
        return self.current

    def advance(self, delta: timedelta) -> None:
        self.current += delta


@dataclass
class MemoryInvocation:
    """An invocation's rows: the `invocation`, `task`, `journal` and `notification` tables in one."""

    record: InvocationRecord
    service_type: str
    #: pending (not run yet), running, suspended, ready (woken), backing-off, paused, completed
    status: str = "pending"
    journal: typing.List[JournalRow] = field(default_factory=list)
    mailbox: typing.List[MailboxItem] = field(default_factory=list)
    wakeups: int = 0
    owner: typing.Optional[str] = None
    epoch: int = 0
    attempts: int = 0
    wake_at: typing.Optional[datetime] = None
    output: typing.Optional[bytes] = None
    failure: typing.Optional[Failure] = None
    #: The last retry an attempt asked for (its failure description and code).
    last_retry: typing.Optional[Retry] = None
    #: Handlers attached to this invocation: (invocation, command) told when it completes.
    waiters: typing.List[typing.Tuple[str, int]] = field(default_factory=list)


class _NoStepStatements:
    """Database steps run SQL in the application's database: there is none here."""

    def __getattr__(self, name: str) -> typing.Any:
        raise NotImplementedError("ctx.run_in_transaction needs PostgreSQL: the in-memory store cannot run it")


class MemoryStore:
    """`runtime.port.JournalStore` in memory, with the semantics of `flush()` in procedures.py."""

    conninfo = ""

    def __init__(self, clock: typing.Optional[MemoryClock] = None) -> None:
        self.clock = clock or MemoryClock()
        self.invocations: typing.Dict[str, MemoryInvocation] = {}
        self.state: typing.Dict[typing.Tuple[str, str], typing.Dict[str, bytes]] = {}
        #: Workflow promises by (service, workflow id, name): a value or a failure.
        self.promises: typing.Dict[typing.Tuple[str, str, str], typing.Tuple[typing.Optional[bytes], typing.Optional[Failure]]] = {}
        self.promise_waiters: typing.Dict[typing.Tuple[str, str, str], typing.List[typing.Tuple[str, int]]] = {}
        #: Every flushed batch, in order, with the invocation that flushed it.
        self.flushes: typing.List[typing.Tuple[str, Batch]] = []
        self._seq = 0

    # -- the port ----------------------------------------------------------------------------

    async def read_mailbox(self, invocation_id: str, after: int) -> typing.Tuple[typing.Optional[int], typing.List[MailboxItem]]:
        inv = self.invocations.get(invocation_id)
        if inv is None:
            return None, []
        return inv.wakeups, [item for item in inv.mailbox if item.seq > after]

    async def load_state(self, service: str, key: str) -> typing.Dict[str, bytes]:
        return dict(self.state.get((service, key), {}))

    async def flush(self, lease: Lease, batch: Batch) -> FlushResult:
        if batch.create is not None and batch.create.id not in self.invocations:
            self.create(batch.create, status="running", owner=lease.owner, epoch=lease.epoch)
        inv = self.invocations.get(lease.invocation_id)
        if inv is None or inv.owner != lease.owner or inv.epoch != lease.epoch:
            raise Fenced(f"attempt {lease.epoch} of {lease.invocation_id} lost its lease")
        result = FlushResult(db_now=self.clock.now())
        self.flushes.append((inv.record.id, batch))
        inv.journal.extend(batch.journal)
        for service, key, op in batch.state:
            values = self.state.setdefault((service, key), {})
            if op.kind == "clear_all":
                values.clear()
            elif op.kind == "clear" or op.value is None:
                values.pop(op.name or "", None)
            else:
                values[op.name or ""] = op.value
        for sub in batch.submissions:
            fresh = sub.id not in self.invocations
            if fresh:
                self.create(sub)
            result.submitted.append(Submitted(sub.id, "invoked" if fresh else None, False, result.db_now))
        consumed = set(batch.consumed)
        inv.mailbox = [item for item in inv.mailbox if item.seq not in consumed]
        for resolution in batch.resolutions:
            target = self.invocations.get(resolution.invocation_id)
            if target is not None and target.status != "completed":
                result.woken.append(self.deliver(resolution.invocation_id, resolution.command_index,
                                                 resolution.value, resolution.failure))
        for signal in batch.signals:  # resolve_signal(): once per name or index, to an unfinished invocation
            woken = self.send_signal(signal.invocation_id, signal.name, signal.value, signal.failure, signal.index)
            if woken is not None:
                result.woken.append(woken)
        self._promises(inv, batch, result)
        for callee in batch.cancels:
            result.woken.extend(self.cancel(callee))
        for target_id, command in batch.attaches:
            result.answers[command] = self._attach(inv.record.id, target_id, command)
        self._outcome(inv, batch.outcome, result)
        return result

    def step_statements(self, lease: Lease) -> StepStatements:
        return typing.cast(StepStatements, _NoStepStatements())

    async def awakeable_schema(self, resolution: Resolution) -> typing.Optional[typing.Dict[str, typing.Any]]:
        target = self.invocations.get(resolution.invocation_id)
        for row in target.journal if target is not None else ():
            if row.command_index == resolution.command_index and row.entry_type == "Awakeable":
                return (row.params or {}).get("schema")
        return None

    async def promise_schemas(self, service: str, key: str, name: str) -> typing.List[typing.Dict[str, typing.Any]]:
        schemas = []
        for waiter, command in self.promise_waiters.get((service, key, name), []):
            for row in self.invocations[waiter].journal:
                if row.command_index == command and row.entry_type == "GetPromise" and (row.params or {}).get("schema"):
                    schemas.append(row.params["schema"])  # type: ignore[index]
        return schemas

    # -- what a flush does besides writing rows ------------------------------------------------

    def _promises(self, inv: MemoryInvocation, batch: Batch, result: FlushResult) -> None:
        if batch.promise_key is None:
            return
        service, workflow_id = batch.promise_key
        for completion in batch.promise_completions:
            key = (service, workflow_id, completion.name)
            if key in self.promises:
                result.answers[completion.command_index] = "already"
                continue
            self.promises[key] = (completion.value, completion.failure)
            result.answers[completion.command_index] = "completed"
            for waiter, command in self.promise_waiters.pop(key, []):
                result.woken.append(self.deliver(waiter, command, completion.value, completion.failure))
        for get in batch.promise_gets:
            key = (service, workflow_id, get.name)
            if key in self.promises:
                result.answers[get.command_index] = _completed_answer(*self.promises[key])
                continue
            if not get.peek:
                self.promise_waiters.setdefault(key, []).append((inv.record.id, get.command_index))
            result.answers[get.command_index] = {"completed": False}

    def _attach(self, waiter: str, target_id: str, command: int) -> typing.Any:
        target = self.invocations.get(target_id)
        if target is None:
            return {"missing": True}
        if target.status == "completed":
            return _completed_answer(target.output, target.failure)
        target.waiters.append((waiter, command))
        return {"completed": False}

    def _outcome(self, inv: MemoryInvocation, outcome: typing.Any, result: FlushResult) -> None:
        if isinstance(outcome, Suspend):
            result.suspended = outcome.wakeups == inv.wakeups
            if result.suspended:
                inv.status, inv.owner, inv.wake_at = "suspended", None, outcome.wake_at
        elif isinstance(outcome, Retry):
            inv.status, inv.owner, inv.last_retry = outcome.status, None, outcome
        elif isinstance(outcome, Complete):
            self._finish(inv, outcome.output, outcome.failure, result)
            if outcome.caller is not None:
                result.woken.append(self.deliver(outcome.caller[0], outcome.caller[1], outcome.output, outcome.failure))

    def _finish(self, inv: MemoryInvocation, output: typing.Optional[bytes], failure: typing.Optional[Failure],
                result: typing.Optional[FlushResult] = None) -> None:
        inv.status, inv.owner, inv.output, inv.failure = "completed", None, output, failure
        for waiter, command in inv.waiters:
            woken = self.deliver(waiter, command, output, failure)
            if result is not None:
                result.woken.append(woken)
        inv.waiters.clear()

    # -- from outside an attempt ---------------------------------------------------------------

    def create(self, sub: Submission, status: str = "pending", owner: typing.Optional[str] = None, epoch: int = 0) -> MemoryInvocation:
        record = InvocationRecord(
            id=sub.id, service=sub.service, handler=sub.handler, key=sub.key, input=sub.input, headers=dict(sub.headers),
            idempotency_key=sub.idempotency_key, caller_id=sub.caller_id, caller_command=sub.caller_command,
            status="invoked",
        )
        inv = self.invocations[sub.id] = MemoryInvocation(record, sub.service_ty, status, owner=owner, epoch=epoch)
        return inv

    def deliver(self, invocation_id: str, command: typing.Optional[int], value: typing.Optional[bytes] = None,
                failure: typing.Optional[Failure] = None,
                signal_name: typing.Optional[str] = None) -> typing.Tuple[str, typing.Optional[str]]:
        """Put a result in the mailbox of `invocation_id` (`deliver_notification()`): wakes it
        if suspended; returns it with the process running it, as `FlushResult.woken` does."""
        inv = self.invocations[invocation_id]
        self._seq += 1
        inv.mailbox.append(MailboxItem(self._seq, command, value, failure, signal_name, self.clock.now()))
        inv.wakeups += 1
        if inv.status == "suspended":
            inv.status = "ready"
        return invocation_id, inv.owner

    def send_signal(self, invocation_id: str, name: typing.Optional[str], value: typing.Optional[bytes] = None,
                    failure: typing.Optional[Failure] = None,
                    index: typing.Optional[int] = None) -> typing.Optional[typing.Tuple[str, typing.Optional[str]]]:
        """Deliver a signal by name or index (`resolve_signal()`): once, to an unfinished invocation."""
        inv = self.invocations.get(invocation_id)
        if inv is None or inv.status == "completed":
            return None
        if index is not None:
            if any(item.command_index == -index for item in inv.mailbox) or any(
                    row.completes == -index for row in inv.journal):
                return None
            return self.deliver(invocation_id, -index, value, failure)
        if any(item.signal_name == name for item in inv.mailbox) or any(
                row.entry_type == "Signal" and (row.params or {}).get("signal_name") == name for row in inv.journal):
            return None
        return self.deliver(invocation_id, None, value, failure, name)

    def cancel(self, invocation_id: str) -> typing.List[typing.Tuple[str, typing.Optional[str]]]:
        """Ask `invocation_id` to cancel itself (`cancel_invocation()`): the cancel signal in its
        mailbox, which the handler meets at its next await that has to wait."""
        inv = self.invocations.get(invocation_id)
        if inv is None or inv.status == "completed":
            return []
        if inv.status in ("backing-off", "paused"):
            inv.status = "ready"
        return [self.deliver(invocation_id, CANCEL_SIGNAL)]

    def pending_sleeps(self, invocation_id: str) -> typing.List[JournalRow]:
        """The sleeps of `invocation_id` whose end is neither journaled nor in the mailbox."""
        inv = self.invocations[invocation_id]
        done = {row.completes for row in inv.journal} | {item.command_index for item in inv.mailbox}
        sleeps = [row for row in inv.journal
                  if row.entry_type == "Sleep" and row.command_index is not None and row.command_index not in done]
        return sorted(sleeps, key=lambda row: (row.sleep_wakeup_at or EPOCH, row.command_index or 0))


def _completed_answer(value: typing.Optional[bytes], failure: typing.Optional[Failure]) -> typing.Dict[str, typing.Any]:
    """A promise's or an invocation's result as `flush()` answers it (see runtime/answers.py)."""
    if failure is not None:
        return {"completed": True, "failure_code": failure.code, "failure_message": failure.message,
                "failure_metadata": failure.metadata}
    return {"completed": True, "value": None if value is None else base64.b64encode(value).decode()}


class MemoryRuntime:
    """The worker's part, played step by step: the `runtime.host.Host` of the attempts it runs."""

    worker_id = "memory-worker"
    deployment_id = "memory"
    poll_interval = 0.01
    default_retry_policy = None

    def __init__(self, app: App, inactivity_timeout: timedelta = timedelta(0)) -> None:
        self.app = app
        self.clock = MemoryClock()
        self.store = MemoryStore(self.clock)
        #: How long an attempt waits in memory before it suspends (0: at once).
        self.default_inactivity_timeout = inactivity_timeout.total_seconds()
        self.attempts: typing.Dict[str, Attempt] = {}
        self._tasks: typing.Set[asyncio.Future[typing.Any]] = set()

    # -- the Host protocol -------------------------------------------------------------------

    def handler(self, service: str, name: str) -> typing.Optional[Handler]:
        return self.app.handler(service, name)

    def setting(self, handler: Handler, name: str) -> typing.Any:
        if name == "inactivity_timeout":
            return timedelta(seconds=self.default_inactivity_timeout)
        return handler.setting(name)

    def reserve_local(self, sub: Submission) -> bool:
        return False  # the test runs every invocation itself

    def attempt_waiting(self, waiting: bool) -> bool:
        return True

    def background(self, coro: typing.Awaitable[typing.Any], kind: str, consequence: str = "") -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def after_flush(self, batch: Batch, result: FlushResult, lease: Lease) -> None:
        for target, owner in result.woken:
            self._wake(target, owner)

    def _wake(self, invocation_id: str, owner: typing.Optional[str]) -> None:
        attempt = self.attempts.get(invocation_id)
        if attempt is not None and owner == self.worker_id:
            attempt.ctx.wake()

    # -- driving invocations -----------------------------------------------------------------

    def submit(self, fn: typing.Any, arg: typing.Any = None, key: typing.Optional[str] = None) -> str:
        """A new invocation of the handler `fn` (a decorated function) with `arg`; not run yet."""
        handler = handler_of(fn)
        payload = handler.input_serde.serialize(arg) if handler.takes_input else b""
        sub = new_submission(handler, key, payload)
        self.store.create(sub)
        return sub.id

    def invocation(self, invocation_id: str) -> MemoryInvocation:
        return self.store.invocations[invocation_id]

    async def run(self, invocation_id: str) -> str:
        """Run one attempt of `invocation_id` from its journal and mailbox; what it committed:
        completed, failed, suspended, retry or paused."""
        inv = self.invocation(invocation_id)
        if inv.status == "completed":
            raise RuntimeError(f"{invocation_id} is completed")
        handler = self.app.handler(inv.record.service, inv.record.handler)
        if handler is None:
            raise LookupError(f"no handler {inv.record.service}/{inv.record.handler} in the app")
        inv.epoch += 1
        inv.attempts += 1
        inv.status, inv.owner = "running", self.worker_id
        lease = Lease(invocation_id, self.worker_id, inv.epoch, inv.attempts)
        attempt = Attempt(self, lease, inv.record, handler, sorted(inv.journal, key=lambda r: r.index),
                          list(inv.mailbox), inv.wakeups)
        self.attempts[invocation_id] = attempt
        try:
            await attempt.run()
        finally:
            if self.attempts.get(invocation_id) is attempt:
                del self.attempts[invocation_id]
        return attempt.outcome

    def runnable(self) -> typing.List[str]:
        return [i for i, inv in self.store.invocations.items() if inv.status in ("pending", "ready", "backing-off")]

    async def drain(self, limit: int = 100) -> None:
        """Run attempts of every invocation that can run (not started, woken, backing off) until
        none can; `limit` attempts at most, against a handler that retries forever."""
        for _ in range(limit):
            ready = self.runnable()
            if not ready:
                return
            await self.run(ready[0])
        raise RuntimeError(f"still runnable after {limit} attempts: {self.runnable()}")

    def fire_timers(self, invocation_id: str) -> int:
        """End every pending sleep of `invocation_id` now, as `Engine.fire_timers` does (the clock
        moves to the latest wake-up time); how many were fired."""
        sleeps = self.store.pending_sleeps(invocation_id)
        for row in sleeps:
            if row.sleep_wakeup_at is not None and row.sleep_wakeup_at > self.clock.now():
                self.clock.current = row.sleep_wakeup_at
            self.deliver(invocation_id, typing.cast(int, row.command_index), b"")
        return len(sleeps)

    def cancel(self, invocation_id: str) -> None:
        for target, owner in self.store.cancel(invocation_id):
            self._wake(target, owner)

    def deliver(self, invocation_id: str, command: int, value: typing.Optional[bytes] = None,
                failure: typing.Optional[Failure] = None) -> None:
        """A result for command `command` of `invocation_id` (a call's, an awakeable's) arrives."""
        self._wake(*self.store.deliver(invocation_id, command, value, failure))

    def resolve_awakeable(self, awakeable_id: str, value: typing.Optional[bytes] = None,
                          failure: typing.Optional[Failure] = None) -> None:
        """Complete an awakeable from outside any handler, as the ingress does."""
        target, command = parse_awakeable_id(awakeable_id)
        self.deliver(target, command, value, failure)

    def awakeables(self, invocation_id: str) -> typing.List[str]:
        """The ids of the awakeables `invocation_id` created, in journal order."""
        return [(row.value or b"").decode() for row in self.journal(invocation_id) if row.entry_type == "Awakeable"
                and row.command_index is not None]

    def result(self, invocation_id: str) -> typing.Any:
        """The completed invocation's output, decoded; raises its failure as a TerminalError."""
        from restate_pg.api.errors import TerminalError

        inv = self.invocation(invocation_id)
        if inv.status != "completed":
            raise RuntimeError(f"{invocation_id} is {inv.status}, not completed")
        if inv.failure is not None:
            raise TerminalError(inv.failure.message, inv.failure.code, inv.failure.metadata)
        handler = self.app.handler(inv.record.service, inv.record.handler)
        assert handler is not None
        return handler.output_serde.deserialize(inv.output or b"")

    def journal(self, invocation_id: str) -> typing.List[JournalRow]:
        return sorted(self.invocation(invocation_id).journal, key=lambda r: r.index)

    def children(self, invocation_id: str) -> typing.List[str]:
        """The invocations `invocation_id` called or sent to, in journal order."""
        return [row.params["invocation_id"] for row in self.journal(invocation_id)
                if row.entry_type in ("Call", "OneWayCall") and row.params]

    def reopen(self, invocation_id: str) -> None:
        """Make a completed invocation runnable again, journal kept: its next attempt replays the
        whole recording (what a test of determinism wants), and completes it again."""
        inv = self.invocation(invocation_id)
        inv.status, inv.output, inv.failure = "ready", None, None
