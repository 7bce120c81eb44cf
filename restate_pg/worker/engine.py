"""`Engine`: everything one process does with the database on behalf of an application.

A process that hosts handlers (`run_handlers=True`) is a worker: it registers itself, heartbeats,
claims due tasks and runs attempts. Work it submits itself (ingress requests, calls between
handlers) runs right here when it has a free slot, without a claim round trip; other workers still
recover it through the lease if this process dies. A process that only serves the ingress
(`run_handlers=False`) submits work, hints workers, and waits for results.
"""

from __future__ import annotations

import asyncio
import os
import socket
import typing
import uuid
from dataclasses import dataclass
from datetime import timedelta


from restate_pg.api.app import App
from restate_pg.api.errors import SdkInternalBaseException
from restate_pg.api.definitions import Handler
from restate_pg.api.metadata import service_metadata
from restate_pg.observability import logs
from restate_pg.observability.metrics import METRICS
from restate_pg.runtime.attempt import Attempt
from restate_pg.runtime.clock import DbClock
from restate_pg.core.ids import new_invocation_id, parse_awakeable_id
from restate_pg.core import hints
from restate_pg.core.hints import HintKind, process_channel, work_channel
from restate_pg.core.errors import Fenced, JournalConflict, StoreUnavailable
from restate_pg.store.driver import SERVICE_SETTINGS, Store
from restate_pg.store.faults import FaultPlan
from restate_pg.worker.failures import FailureLog
from restate_pg.core.records import (
    Batch,
    ClaimedTask,
    Complete,
    Failure,
    FlushResult,
    InvocationRecord,
    Lease,
    Resolution,
    Retry,
    Submission,
    Submitted,
)

logger = logs.internal_logger("restate_pg.worker")


@dataclass(frozen=True)
class InvocationResult:
    """The result of a completed invocation, as callers receive it."""

    output: typing.Optional[bytes]
    failure: typing.Optional[Failure]

    @classmethod
    def from_row(cls, row: typing.Mapping[str, typing.Any]) -> "InvocationResult":
        if row["result"] == "failure":
            return cls(None, Failure(row["failure_code"], row["failure_message"] or "", row["failure_metadata"]))
        output = row["output"]
        return cls(None if output is None else bytes(output), None)


#: How long the claim loop waits before looking again at due tasks it could not claim.
_CONTENDED_PAUSE = 0.02


class RestartRefused(Exception):
    """A restart-as-new that cannot be done, with the HTTP status Restate's admin API answers."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class Engine:
    def __init__(
        self,
        app: App,
        database_url: str,
        *,
        schema: str = "restate",
        run_handlers: bool = True,
        concurrency: int = 100,
        poll_interval: float = 1.0,
        lease_seconds: float = 15.0,
        inactivity_timeout: float = 5.0,
        poll_only: bool = False,
        pool_size: int = 10,
        retention_interval: float = 60.0,
        deployment: typing.Optional[str] = None,
        faults: typing.Optional[FaultPlan] = None,
    ) -> None:
        self.app = app
        self.schema = schema
        self.run_handlers = run_handlers
        self.concurrency = concurrency
        self.poll_interval = poll_interval
        self.lease_seconds = lease_seconds
        self.default_inactivity_timeout = inactivity_timeout
        self.poll_only = poll_only
        self.stop_grace = 2.0
        self.retention_interval = retention_interval
        self.store = Store(database_url, schema, max_size=pool_size, prepare=not poll_only,
                           faults=faults if faults is not None else FaultPlan.from_env(),
                           application_name=f"restate-pg {'worker' if run_handlers else 'ingress'} {os.getpid()}")
        self.clock = DbClock()
        self.worker_id = uuid.uuid4().hex[:16]
        self.services = sorted(app.services)
        self.deployment_id = deployment or app.deployment_id
        #: The deployments whose pinned invocations this worker resumes: its own first, then those
        #: an operator marked compatible with it.
        self.deployments: typing.List[str] = [self.deployment_id]
        #: Settings operators changed (admin `PATCH /services/{name}`), by service; refreshed on
        #: a "services" hint and with each retention sweep.
        self._overrides: typing.Dict[str, typing.Dict[str, typing.Any]] = {}
        #: Attempts running (counted against `concurrency`) and attempts waiting in memory for a
        #: timer or a result (counted against `max_waiting` only: they use no CPU, and holding a
        #: slot for them would let a burst of sleepers delay all other work by their sleep).
        self._active = 0
        self._waiting = 0
        self.max_waiting = 10 * concurrency
        self._attempts: typing.Dict[str, Attempt] = {}
        #: Invocations claimed by this process and not yet running an attempt (being loaded).
        #: With `_attempts`, what the heartbeat says this process holds; it gives back the rest.
        self._starting: typing.Set[str] = set()
        #: Pauses between tries to hand an invocation back after an unexpected error.
        self.release_backoff: typing.Tuple[float, ...] = (0.1, 0.5, 2.0, 5.0)
        self.failures = FailureLog(logger)
        #: Since when (event-loop time) this worker's heartbeats have all succeeded; None while
        #: they fail. Reaping waits for a lease of them (see `_reap_loop`).
        self._beating_since: typing.Optional[float] = None
        self._waiters: typing.Dict[str, typing.List["asyncio.Future[typing.Optional[InvocationResult]]"]] = {}
        self._work = asyncio.Event()
        self._tasks: typing.Set["asyncio.Task[typing.Any]"] = set()
        self._loops: typing.List["asyncio.Task[None]"] = []
        self._listener: typing.Any = None
        self._hint_running = False
        self._hint_again = False
        self._uncreated: typing.Set[str] = set()
        self._started = False
        self._stopping = False
        self._cron: typing.Any = None

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def work_channel(self) -> str:
        return work_channel(self.schema)

    @property
    def own_channel(self) -> str:
        return process_channel(self.schema, self.worker_id)

    async def start(self) -> None:
        await self.store.open()
        if self.run_handlers:
            await self.store.register_deployment(
                self.deployment_id, [service_metadata(service) for service in self.app.services.values()])
            db_now = await self._register_worker()
            self._beating_since = asyncio.get_running_loop().time() - self.lease_seconds  # reaps at once
        else:
            db_now = await self.store.db_now()
        await self.load_overrides()
        self.clock.sync(db_now)
        if not self.poll_only:
            from restate_pg.store.listener import Listener

            self._listener = Listener(self.store.conninfo, [self.work_channel, self.own_channel], self._on_notify, self._work.set)
            self._listener.start()
            try:
                await asyncio.wait_for(self._listener.connected.wait(), 5)
            except asyncio.TimeoutError:
                logger.warning("LISTEN is not connected yet; relying on polling")
        if self.run_handlers:
            from restate_pg.worker.cron import CronLoop

            self._cron = CronLoop(self)
            await self._cron.sync()
            self._loops.append(asyncio.ensure_future(self._claim_loop()))
            self._loops.append(asyncio.ensure_future(self._heartbeat_loop()))
            self._loops.append(asyncio.ensure_future(self._reap_loop()))
            self._loops.append(asyncio.ensure_future(self._cron.run()))
        self._loops.append(asyncio.ensure_future(self._housekeeping_loop()))
        self._started = True

    async def _register_worker(self) -> typing.Any:
        return await self.store.register_worker(
            self.worker_id, socket.gethostname(), os.getpid(), self.services, self.deployment_id)

    async def load_overrides(self) -> None:
        """Read the settings operators changed: of this application's services, and which other
        deployments' invocations this worker may resume."""
        if self.run_handlers:
            compatible = await self.store.compatible_deployments(self.deployment_id)
            self.deployments = [self.deployment_id, *(d for d in compatible if d != self.deployment_id)]
        overrides: typing.Dict[str, typing.Dict[str, typing.Any]] = {}
        for row in await self.store.list_services():
            if row["name"] in self.app.services:
                overrides[row["name"]] = {
                    name: row[name] if name == "public" else (None if row[name] is None else timedelta(seconds=row[name]))
                    for name in SERVICE_SETTINGS
                }
        self._overrides = overrides

    def setting(self, handler: Handler, name: str) -> typing.Any:
        override = self._overrides.get(handler.service_name, {}).get(name)
        if override is not None:
            return override
        return handler.setting(name)

    def is_public(self, handler: Handler) -> bool:
        """Whether the ingress may call `handler`: not private in code, nor made private by an
        operator (`PATCH /services/{name}` with `public: false`)."""
        return not handler.is_private and self._overrides.get(handler.service_name, {}).get("public") is not False

    async def stop(self) -> None:
        """Stop claiming, abandon running attempts and hand their invocations back at once."""
        self._stopping = True
        for loop_task in self._loops:
            loop_task.cancel()
        for attempt in list(self._attempts.values()):
            attempt.ctx.close()  # each attempt ends at its next await, after its current statement
        tasks = [t for t in self._tasks if not t.done()]
        if tasks:
            await asyncio.wait(tasks, timeout=self.stop_grace)
        for task in tasks:
            task.cancel()  # what is still running now is stuck in user code: cancel it
        # On Python 3.11 a cancellation racing a pool hand-over can be swallowed: ask again.
        while loops := [t for t in self._loops if not t.done()]:
            for loop_task in loops:
                loop_task.cancel()
            await asyncio.wait(loops, timeout=0.5)
        await asyncio.gather(*self._loops, *tasks, return_exceptions=True)
        if self._listener is not None:
            await self._listener.stop()
        if self.run_handlers and self._started:
            try:
                await self.store.unregister_worker(self.worker_id)
            except Exception as exc:  # the lease expiry recovers them anyway
                logger.warning("could not unregister worker %s: %s", self.worker_id, exc)
        await self.store.close()

    async def run_forever(self) -> None:
        await asyncio.Event().wait()

    # -- submitting and waiting (used by the ingress) ----------------------------------------

    async def submit(self, sub: Submission, *, wait: bool = False) -> typing.Tuple[Submitted, typing.Optional["asyncio.Future[typing.Optional[InvocationResult]]"]]:
        """Submit an invocation; with `wait`, also return a future for its result."""
        waiter = None
        if wait:
            sub.waiter = self.worker_id
            waiter = self._add_waiter(sub.id)
        if sub.delay_ms is None and self.reserve_local(sub):
            sub.owner = self.worker_id
            sub.deployment = self.deployment_id
            if wait and self._deferrable(sub):
                # The caller waits on this process, which runs the invocation: its row is written
                # with the attempt's first flush, not in a transaction of its own. Until then
                # nothing of it is durable and the caller has no answer, as if the request were
                # still in flight.
                self._uncreated.add(sub.id)
                self._start_submitted(sub, create=True)
                return Submitted(sub.id, "invoked", True), waiter
        try:
            submitted = await self.store.submit(sub)
        except BaseException:
            if sub.owner is not None:
                self._release_slot()
            if waiter is not None:
                self._remove_waiter(sub.id, waiter)
            raise
        if submitted.db_now is not None:
            self.clock.sync(submitted.db_now)
        self._after_submit(sub, submitted)
        return submitted, waiter

    async def call(self, sub: Submission) -> typing.Tuple[Submitted, typing.Optional[InvocationResult]]:
        """Submit an invocation and wait for its result (None: it vanished, e.g. purged). A
        duplicate idempotency key attaches to the first submission; a workflow's run already
        started answers 409, as Restate's ingress does."""
        submitted, waiter = await self.submit(sub, wait=True)
        if submitted.status is None:
            if waiter is not None:
                self._remove_waiter(sub.id, waiter)
            if sub.handler_ty == "workflow":
                return submitted, InvocationResult(None, Failure(409, "the workflow method was already invoked"))
            waiter = None
        return submitted, await self.result(sub.id, waiter)

    @staticmethod
    def _deferrable(sub: Submission) -> bool:
        """Creation can wait for the first flush unless something must be durable at once."""
        return sub.idempotency_key is None and not sub.exclusive and sub.handler_ty != "workflow"

    async def result(
        self, invocation_id: str, waiter: typing.Optional["asyncio.Future[typing.Optional[InvocationResult]]"] = None
    ) -> typing.Optional[InvocationResult]:
        """Wait for an invocation's result; None if it does not exist."""
        if waiter is None:
            waiter = self._add_waiter(invocation_id)
            row = await self.store.wait_for(invocation_id, self.worker_id)
            if row is None:
                self._remove_waiter(invocation_id, waiter)
                return None
            if row["status"] == "completed":
                self._remove_waiter(invocation_id, waiter)
                return InvocationResult.from_row(row)
        try:
            while True:
                try:
                    outcome = await asyncio.wait_for(asyncio.shield(waiter), self.poll_interval)
                except asyncio.TimeoutError:
                    outcome = None
                if outcome is not None:
                    return outcome
                row = await self.store.get_invocation(invocation_id)
                if row is None:
                    if invocation_id in self._uncreated:
                        continue  # running here, not flushed yet
                    return None
                if row["status"] == "completed":
                    return InvocationResult.from_row(row)
                if waiter.done():
                    self._remove_waiter(invocation_id, waiter)
                    waiter = self._add_waiter(invocation_id)
        finally:
            self._remove_waiter(invocation_id, waiter)

    def _add_waiter(self, invocation_id: str) -> "asyncio.Future[typing.Optional[InvocationResult]]":
        future: "asyncio.Future[typing.Optional[InvocationResult]]" = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(invocation_id, []).append(future)
        return future

    def _remove_waiter(self, invocation_id: str, future: "asyncio.Future[typing.Any]") -> None:
        futures = self._waiters.get(invocation_id)
        if futures and future in futures:
            futures.remove(future)
            if not futures:
                del self._waiters[invocation_id]

    def _notify_waiters(self, invocation_id: str, result: typing.Optional[InvocationResult]) -> None:
        for future in self._waiters.get(invocation_id, []):
            if not future.done():
                future.set_result(result)

    async def resolve_awakeable(
        self, awakeable_id: str, value: typing.Optional[bytes], failure: typing.Optional[Failure] = None
    ) -> str:
        """Complete an awakeable from outside a handler; what became of it (see the store).
        Raises ValueError for an id that is not an awakeable id."""
        target, command = parse_awakeable_id(awakeable_id)
        status, owner = await self.store.resolve_awakeable(Resolution(awakeable_id, target, command, value, failure))
        if status == "resolved":
            self._wake(target, owner)
        return status

    async def cancel_invocation(self, invocation_id: str) -> str:
        """Ask an invocation to stop: "canceled" (it never ran and has ended), "signalled" (its
        handler raises at its next await), "completed" or "missing"."""
        applied = await self.store.cancel(invocation_id)
        for target, owner in applied.get("woken", ()):
            self._wake(target, owner)
        if applied["status"] == "canceled":
            self._tell_waiter(invocation_id, applied.get("waiter"), InvocationResult(None, Failure(409, "canceled")))
        return str(applied["status"])

    async def kill_invocation(self, invocation_id: str) -> str:
        """End an invocation now with 409 "killed", and the invocations it called or sent to:
        "killed", "completed" or "missing"."""
        applied = await self.store.kill(invocation_id)
        if applied["status"] != "killed":
            return str(applied["status"])
        for target, owner in applied.get("woken", ()):
            self._wake(target, owner)
        if applied.get("ready"):
            self._hint_work()  # an object key passed to the next invocation in line
        self._tell_waiter(invocation_id, applied.get("waiter"), InvocationResult(None, Failure(409, "killed")))
        self._stop_attempt(invocation_id, self.worker_id)
        return "killed"

    async def purge_invocation(self, invocation_id: str) -> str:
        """Forget a completed invocation: "purged", "missing" or "running" (not completed)."""
        status, purged = await self.store.purge(invocation_id)
        return "purged" if purged else ("missing" if status is None else "running")

    async def resume_invocation(self, invocation_id: str) -> str:
        """Run a paused, backing-off or suspended invocation now: "resumed" (or "running": it
        runs already), "missing", "completed", or "pending" (inboxed or scheduled)."""
        status, task_status, resumed = await self.store.resume(invocation_id)
        if status is None:
            return "missing"
        if status == "completed":
            return "completed"
        if status in ("inboxed", "scheduled"):
            return "pending"
        if resumed:
            self._hint_work()
            return "resumed"
        return "running"

    async def fire_timers(self, invocation_id: typing.Optional[str] = None) -> int:
        """Fire now every pending sleep of `invocation_id` (of every invocation if None), and start
        its delayed invocations, as if their time had come; returns how many fired or started.

        For tests (`restate_pg.testing`): a sleep's completion is delivered like any result, so an
        invocation suspended on it resumes, and one waiting for it in memory, in this process or
        another, continues at once. Only sleeps already journaled (awaited) are fired."""
        fired = await self.store.fire_timers(invocation_id)
        for target, owner, slept in fired:
            if slept:
                self._wake(target, owner)
            else:
                self._hint_work()
        return len(fired)

    async def pause_invocation(self, invocation_id: str) -> str:
        """Stop an invocation until it is resumed: "paused" (now), "already" (paused before),
        "missing", "completed", or "pending" (inboxed or scheduled: it has not started)."""
        status, task_status, paused, stopped = await self.store.pause(invocation_id)
        if status is None:
            return "missing"
        if status == "completed":
            return "completed"
        if paused:
            if stopped is not None:
                self._stop_attempt(invocation_id, stopped.owner, stopped.epoch)
            return "paused"
        return "already" if task_status == "paused" else "pending"

    async def purge_journal(self, invocation_id: str) -> str:
        """Forget a completed invocation's journal, keeping its result: "purged", "missing" or
        "running" (not completed)."""
        status = await self.store.purge_journal(invocation_id)
        return "missing" if status is None else ("purged" if status == "completed" else "running")

    async def restart_invocation(self, invocation_id: str, prefix: int = 0) -> str:
        """Run a completed invocation again as a new one with the same input and headers,
        replaying its journal up to position `prefix` (0: from scratch). Returns the new id, or
        raises `RestartRefused` saying why not."""
        source = await self.store.restart_source(invocation_id, prefix)
        if source is None:
            raise RestartRefused(404, "invocation not found")
        if source["status"] in ("inboxed", "scheduled"):
            raise RestartRefused(425, "the invocation has not started yet (inboxed or scheduled)")
        if source["status"] != "completed":
            raise RestartRefused(409, "the invocation is still running; cancel or kill it first")
        if source["handler_ty"] == "workflow":
            raise RestartRefused(422, "restart-as-new is not supported for workflow runs")
        if prefix > 0:
            if source["last_index"] is None:
                raise RestartRefused(410, "the journal of the invocation was purged; restart it from 0")
            if prefix > source["last_index"]:
                raise RestartRefused(400, f"from={prefix} is past the end of the journal (last entry {source['last_index']})")
            if source["uncompleted"]:
                raise RestartRefused(400, f"the journal up to entry {prefix} holds commands whose results come later; choose another 'from'")
        lock = (source["service"], source["key"] or "") if source["handler_ty"] == "exclusive" else None
        new_id = new_invocation_id(source["key"])
        status, kept = await self.store.restart(invocation_id, new_id, prefix, lock)
        if kept < 0:
            raise RestartRefused(404, "invocation not found")
        if status is None:  # its journal was purged since it was checked
            raise RestartRefused(410, "the journal of the invocation was purged; restart it from 0")
        if status == "invoked":
            self._hint_work()
        return new_id

    def _stop_attempt(self, invocation_id: str, owner: str, epoch: typing.Optional[int] = None) -> None:
        """End the attempt `owner` runs of an invocation whose lease was taken away: the one at
        `epoch` (a later one, started after a resume, keeps running), or any when None."""
        if owner == self.worker_id:
            attempt = self._attempts.get(invocation_id)
            if attempt is not None and (epoch is None or attempt.lease.epoch == epoch):
                logger.info("attempt %d of %s stopped: its lease was taken away", attempt.lease.epoch, invocation_id)
                attempt.ctx.close()  # its writes would be refused anyway: end it now
        else:
            self.background(self.store.notify(process_channel(self.schema, owner), hints.stop(invocation_id, epoch)),
                             "notify", "the attempt's next write is refused by the fence")

    # -- Host interface for attempts -----------------------------------------------------------

    def reserve_local(self, sub: Submission) -> bool:
        if not self.run_handlers or self.app.handler(sub.service, sub.handler) is None:
            return False
        if self._active >= self.concurrency:
            return False
        self._active += 1
        return True

    def attempt_waiting(self, waiting: bool) -> bool:
        if waiting:
            if self._waiting >= self.max_waiting:
                return False
            self._waiting += 1
            self._release_slot()
        else:
            self._waiting -= 1
            self._active += 1
        return True

    def _release_slot(self) -> None:
        self._active -= 1
        if self._active == self.concurrency - 1:
            self._work.set()  # the claim loop may be waiting for a free slot

    def _after_submit(self, sub: Submission, submitted: Submitted) -> None:
        if submitted.leased:
            self._start_submitted(sub, state=submitted.state)
        else:
            if sub.owner is not None:
                self._release_slot()
            if submitted.status in ("invoked", "scheduled"):
                self._hint_work()

    def after_flush(self, batch: Batch, result: FlushResult, lease: typing.Optional[Lease] = None) -> None:
        for target, owner in result.woken:
            self._wake(target, owner)
        if batch.create is not None:
            self._uncreated.discard(batch.create.id)
        for sub, submitted in zip(batch.submissions, result.submitted, strict=True):
            self._after_submit(sub, submitted)
        outcome = batch.outcome
        if isinstance(outcome, Complete) and lease is not None:
            invocation_id = lease.invocation_id
            self._tell_waiter(invocation_id, result.waiter, InvocationResult(outcome.output, outcome.failure))
            if outcome.caller is not None:
                self._wake(outcome.caller[0], result.caller_owner)
            if result.next_holder is not None:  # leased here with the key: start it, no reads needed
                self._active += 1
                finished = self._attempts.get(invocation_id)
                self._start_fresh(result.next_holder, state=finished.ctx.known_state() if finished else None)

    def _tell_waiter(self, invocation_id: str, waiter: typing.Optional[str], result: InvocationResult) -> None:
        """An invocation completed: tell the process waiting for its result (`invocation.waiter`)."""
        if waiter == self.worker_id:
            self._notify_waiters(invocation_id, result)
        elif waiter is not None:
            channel = self.work_channel if waiter == "*" else process_channel(self.schema, waiter)
            self.background(self.store.notify(channel, hints.done(invocation_id)), "notify", "the caller finds the result by polling")
            if waiter == "*":
                self._notify_waiters(invocation_id, None)

    def _wake(self, invocation_id: str, owner: typing.Optional[str]) -> None:
        """Tell whoever runs `invocation_id` that its mailbox has news; with no owner, it was
        suspended and is ready now, so tell the workers there is work."""
        if owner is None:
            self._hint_work()
        elif owner == self.worker_id:
            attempt = self._attempts.get(invocation_id)
            if attempt is not None:
                attempt.ctx.wake()
        else:
            self.background(self.store.notify(process_channel(self.schema, owner), hints.wake(invocation_id)),
                             "notify", "the woken invocation finds its mailbox by polling")

    def _hint_work(self) -> None:
        """Tell workers there is new work: at most one NOTIFY in flight per process."""
        if self._hint_running:
            self._hint_again = True
            return
        self._hint_running = True
        self.background(self._send_hints(), "notify", "workers find the work by polling")

    async def _send_hints(self) -> None:
        try:
            while True:
                self._hint_again = False
                await self.store.notify(self.work_channel, hints.WORK)
                if not self._hint_again:
                    return
        finally:
            self._hint_running = False

    def _on_notify(self, channel: str, payload: str) -> None:
        hint = hints.parse_hint(payload)
        if hint.kind is HintKind.SERVICES:
            self.background(self.load_overrides(), "reading service settings", "read again at the next housekeeping")
        elif hint.kind is HintKind.CRON:
            if self._cron is not None:
                self._cron.wake()
        elif hint.kind is HintKind.DONE:
            self._notify_waiters(hint.invocation_id, None)
        elif hint.kind is HintKind.WAKE:
            attempt = self._attempts.get(hint.invocation_id)
            if attempt is not None:
                attempt.ctx.wake()
        elif hint.kind is HintKind.STOP:
            self._stop_attempt(hint.invocation_id, self.worker_id, hint.epoch)
        else:
            self._work.set()

    def background(self, coro: typing.Awaitable[typing.Any], kind: str, consequence: str = "") -> None:
        """Run `coro` without waiting for it; a failure is logged once per outage (`FailureLog`)."""
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        self.failures.watch(kind, task, consequence)


    # -- running attempts ---------------------------------------------------------------------

    def _start_submitted(
        self, sub: Submission, create: bool = False, state: typing.Optional[typing.Dict[str, bytes]] = None
    ) -> None:
        """Run an invocation this process just submitted and leased to itself (slot reserved)."""
        record = InvocationRecord(
            id=sub.id, service=sub.service, handler=sub.handler, key=sub.key, input=sub.input,
            headers=sub.headers, idempotency_key=sub.idempotency_key, caller_id=sub.caller_id,
            caller_command=sub.caller_command, status="invoked",
        )
        self._start_fresh(record, create=sub if create else None, state=state)

    def _start_fresh(
        self,
        record: InvocationRecord,
        create: typing.Optional[Submission] = None,
        state: typing.Optional[typing.Dict[str, bytes]] = None,
    ) -> None:
        """Run an invocation leased to this process at epoch 1, which has no journal yet."""
        handler = self.app.handler(record.service, record.handler)
        assert handler is not None
        self._launch(Attempt(self, Lease(record.id, self.worker_id, 1, 1), record, handler, create=create, state=state))

    def _launch(self, attempt: Attempt) -> None:
        """Run `attempt` (its slot reserved). It is registered at once, before it first runs,
        so that the heartbeat counts its lease as held from the moment the lease is known."""
        self._attempts[attempt.invocation_id] = attempt
        self.background(self._run_attempt(attempt), "attempt")

    async def _run_attempt(self, attempt: Attempt) -> None:
        invocation_id = attempt.invocation_id
        try:
            await attempt.run()
        except asyncio.CancelledError:
            raise
        except SdkInternalBaseException as exc:
            # Its context was closed under it: by a pause or kill (the lease is gone, and the
            # release below is refused by the fence) or by stop() (unregistering hands it back).
            if not self._stopping:
                await self._release_lease(attempt.lease, f"attempt ended: {exc!r}")
        except StoreUnavailable as exc:  # the database went away under it: not a bug
            logger.warning("attempt %d of %s lost its database connection (%s); handing it back",
                           attempt.lease.epoch, invocation_id, exc)
            await self._release_lease(attempt.lease, f"database connection lost: {exc}")
        except Exception as exc:
            if isinstance(exc, JournalConflict):
                # A flush whose answer was lost with its connection had committed after all: this
                # attempt's idea of its journal is behind. The next attempt replays what was written.
                logger.warning("attempt %d of %s: a write whose answer was lost had committed; handing it back to replay",
                               attempt.lease.epoch, invocation_id)
                reason = "a write whose answer was lost had committed"
            else:
                logger.exception("attempt of %s crashed: %s", invocation_id, exc)
                reason = f"attempt crashed: {exc!r}"
            await self._release_lease(attempt.lease, reason)
        finally:
            if self._attempts.get(invocation_id) is attempt:
                del self._attempts[invocation_id]
            if invocation_id in self._uncreated:  # ended before anything was written
                self._uncreated.discard(invocation_id)
                self._notify_waiters(
                    invocation_id, InvocationResult(None, Failure(500, "the invocation ended before it was recorded; retry the request"))
                )
            self._release_slot()

    async def _release_lease(self, lease: Lease, reason: str) -> None:
        """Give an invocation back after an unexpected error, so it is retried instead of stuck.
        If that fails too, this process's heartbeat gives it back: it no longer holds it."""
        for delay in self.release_backoff:
            try:
                await self.store.flush(lease, Batch(outcome=Retry("backing-off", 1000, reason, 500)))
                # The fence passed, so the invocation exists even if the flush that created it
                # looked lost: its caller keeps waiting for the retry's result.
                self._uncreated.discard(lease.invocation_id)
                return
            except Fenced:
                return
            except Exception:
                await asyncio.sleep(delay)
        logger.warning("could not hand %s back; this worker's heartbeat will", lease.invocation_id)

    # -- loops -------------------------------------------------------------------------------

    async def _claim_loop(self) -> None:
        batch_limit = 32
        while True:
            try:
                self._work.clear()
                free = self.concurrency - self._active
                claimed: typing.Sequence[ClaimedTask] = []
                if free > 0:
                    claimed = await self.store.claim(self.worker_id, self.services, min(free, batch_limit), self.deployments)
                    self.failures.succeeded("claim")
                    if claimed:
                        self.clock.sync(claimed[0].db_now)
                        self._active += len(claimed)
                        self._starting.update(c.lease.invocation_id for c in claimed)
                        await self._start_claimed(claimed)
                        if len(claimed) == min(free, batch_limit):
                            continue
                due = await self.store.next_due(self.services, self.deployments) if free > 0 else None
                timeout = self.poll_interval if due is None else max(0.0, min(due, self.poll_interval))
                if not claimed and timeout == 0:
                    # due but not claimable: row-locked by a transaction under way (a database
                    # step, another worker's claim); look again shortly rather than spin
                    timeout = _CONTENDED_PAUSE
                if timeout > 0:
                    try:
                        await asyncio.wait_for(self._work.wait(), timeout)
                    except asyncio.TimeoutError:
                        pass
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.failures.failed("claim", exc, f"retrying in {self.poll_interval:.1f}s")
                await asyncio.sleep(self.poll_interval)

    async def _start_claimed(self, claimed: typing.Sequence[ClaimedTask]) -> None:
        """Start every claimed task, or hand it back: whatever raises, none is left leased here
        without an attempt (the heartbeat would give it back, but only after its grace)."""
        unstarted = {task.lease.invocation_id: task for task in claimed}
        try:
            loaded = await self.store.load(list(unstarted))
            for task in claimed:
                invocation_id = task.lease.invocation_id
                entry = loaded.get(invocation_id)
                handler = None if entry is None else self.app.handler(entry.invocation.service, entry.invocation.handler)
                if entry is None or handler is None:
                    continue  # handed back below
                METRICS.observe(METRICS.claim_lag, (entry.invocation.service, entry.invocation.handler), task.lag)
                self._launch(Attempt(self, task.lease, entry.invocation, handler, entry.journal, entry.mailbox, task.wakeups))
                del unstarted[invocation_id]
                self._starting.discard(invocation_id)
        except Exception as exc:
            self.failures.failed("loading claimed invocations", exc, "handing them back")
        finally:
            for invocation_id, task in unstarted.items():
                self._starting.discard(invocation_id)
                self._release_slot()
                self.background(self._release_lease(task.lease, "could not start it here"), "hand-back")

    async def _housekeeping_loop(self) -> None:
        """Re-read operators' settings (in case a "services" hint was missed) and, in a worker,
        forget completed invocations past their retention: every worker sweeps, each takes rows
        the others have not locked."""
        while True:
            await asyncio.sleep(self.retention_interval)
            try:
                await self.load_overrides()
                if self.run_handlers:
                    while await self.store.purge_expired() == 1000:
                        pass  # a backlog: keep going
                self.failures.succeeded("housekeeping")
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.failures.failed("housekeeping", exc, "retrying later")

    async def _heartbeat_loop(self) -> None:
        """Renew this worker's leases, and give back those it holds without an attempt.

        Nothing else runs in this loop and its statement has a connection of its own, so a
        worker's liveness never waits for a free connection or for another worker's locks."""
        interval = self.lease_seconds / 3
        grace_ms = int(self.lease_seconds * 1000)
        while True:
            await asyncio.sleep(interval)
            try:
                beat = await self.store.heartbeat(self.worker_id, self._attempts.keys() | self._starting, grace_ms)
                self.failures.succeeded("heartbeat")
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.failures.failed("heartbeat", exc, "retrying")
                self._beating_since = None
                continue
            if self._beating_since is None:
                self._beating_since = asyncio.get_running_loop().time()
            if beat is None:
                logger.error("worker %s was declared dead (heartbeat too late); abandoning its attempts", self.worker_id)
                for attempt in list(self._attempts.values()):
                    attempt.ctx.close()
                await self._register_worker()
                continue
            self.clock.sync(beat[0])
            if beat[1]:
                logger.warning("gave back %d invocation(s) this worker held without running them: %s",
                               len(beat[1]), ", ".join(beat[1][:5]))
                self._work.set()

    async def _reap_loop(self) -> None:
        """Make the work of dead workers claimable; rows locked elsewhere wait for the next round.

        Only a worker whose own heartbeats have succeeded for a whole lease reaps: after the
        database was unreachable, every worker's heartbeat is stale, and the first to reconnect
        would otherwise declare all the others dead and throw their work away."""
        lease_ms = int(self.lease_seconds * 1000)
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.lease_seconds / 3)
            if self._beating_since is None or loop.time() - self._beating_since < self.lease_seconds:
                continue
            try:
                reaped = await self.store.reap(lease_ms)
                self.failures.succeeded("reaping")
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.failures.failed("reaping", exc, "retrying")
                continue
            if reaped:
                logger.warning("recovered %d invocation(s) of dead workers", len(reaped))
                self._work.set()


async def run_worker(
    app: App,
    database_url: str,
    schema: str = "restate",
    *,
    concurrency: int = 100,
    poll_only: bool = False,
    metrics_port: typing.Optional[int] = None,
    metrics_host: str = "127.0.0.1",
    **options: typing.Any,
) -> None:
    """Run a worker until cancelled: claim and execute the application's invocations; with
    `metrics_port`, also serve `GET /metrics` there."""
    engine = Engine(app, database_url, schema=schema, concurrency=concurrency, poll_only=poll_only, **options)
    await engine.start()
    try:
        if metrics_port is None:
            await engine.run_forever()
        else:
            from restate_pg.admin.metrics import serve_metrics

            async with serve_metrics(engine, metrics_host, metrics_port):
                await engine.run_forever()
    finally:
        await engine.stop()
