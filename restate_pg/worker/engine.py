"""`Engine`: a worker, the process that claims invocations and runs their attempts.

An engine is a `Gateway` (the services every transport uses, see `restate_pg.services`) that also
runs handlers (`run_handlers=True`): it registers itself, heartbeats (`liveness.py`), claims due
tasks (`claims.py`) and runs attempts, counting them in `slots` (`slots.py`). Work it submits
itself (ingress requests, calls between handlers) runs right here when it has a free slot,
without a claim round trip: it is the services' `LocalWorker`. Other workers still recover that
work through the lease if this process dies. With `run_handlers=False` it is a bare gateway.
"""

from __future__ import annotations

import asyncio
import os
import socket
import typing

from restate_pg.api.app import App
from restate_pg.api.definitions import Handler
from restate_pg.api.errors import SdkInternalBaseException
from restate_pg.api.metadata import service_metadata
from restate_pg.api.retry import InvocationRetryPolicy
from restate_pg.core import hints
from restate_pg.core.errors import Fenced, JournalConflict, StoreUnavailable
from restate_pg.core.hints import HintKind
from restate_pg.core.records import Batch, Complete, Failure, FlushResult, InvocationRecord, Lease, Retry, Submission
from restate_pg.observability import logs
from restate_pg.runtime.attempt import Attempt
from restate_pg.services.gateway import Gateway
from restate_pg.services.outcomes import InvocationResult
from restate_pg.store.faults import FaultPlan
from restate_pg.worker.claims import claim_loop
from restate_pg.worker.deployments import Deployments
from restate_pg.worker.endpoints import EndpointDriver
from restate_pg.worker.liveness import Liveness
from restate_pg.worker.slots import RunQueue, Slots

logger = logs.internal_logger("restate_pg.worker")

__all__ = ["Engine", "InvocationResult", "RunningAttempt", "run_worker"]


class RunningAttempt(typing.Protocol):
    """An attempt as the worker runs it: in-process (`runtime/attempt.py`) or on an SDK endpoint
    (`endpoints/attempt.py`)."""

    lease: Lease

    @property
    def invocation_id(self) -> str: ...

    async def run(self) -> typing.Optional[FlushResult]: ...

    def close(self) -> None:
        """End at the next await: the lease is gone, or the process stops."""

    def wake(self) -> None:
        """Its mailbox has news."""

    def known_state(self) -> typing.Optional[typing.Dict[str, bytes]]:
        """The object key's state as the attempt left it, for the next invocation of the key."""


#: Attempts a process runs at once (its slots) unless told otherwise.
DEFAULT_CONCURRENCY = 100
#: The same for a process with no application: its attempts are exchanges with SDK endpoints,
#: whose handlers use the CPU of their own processes. Sends beyond it wait in the run queue,
#: leased here (`RunQueue`): under a burst, fewer exchanges at once leave the CPU to accepting
#: the sends (TypeScript W4 benchmark: sends acknowledged +25-35 % against 1,000 at once, with
#: as many completions and less CPU per invocation; 48 at once starved completions instead).
ENDPOINTS_ONLY_CONCURRENCY = 256


class Engine(Gateway):
    def __init__(
        self,
        app: App,
        database_url: str,
        *,
        schema: str = "restate",
        run_handlers: bool = True,
        concurrency: typing.Optional[int] = None,
        poll_interval: float = 1.0,
        lease_seconds: float = 15.0,
        inactivity_timeout: float = 5.0,
        poll_only: bool = False,
        pool_size: int = 10,
        retention_interval: float = 60.0,
        deployment: typing.Optional[str] = None,
        take_over_deployments: bool = False,
        faults: typing.Optional[FaultPlan] = None,
        default_retry_policy: typing.Optional[InvocationRetryPolicy] = None,
    ) -> None:
        self.run_handlers = run_handlers
        #: The retry policy of handlers that set none, theirs or their service's (the harness's
        #: `disable_retries`: one attempt, then killed).
        self.default_retry_policy = default_retry_policy
        if concurrency is None:
            concurrency = DEFAULT_CONCURRENCY if app.services else ENDPOINTS_ONLY_CONCURRENCY
        self.concurrency = concurrency
        self.lease_seconds = lease_seconds
        self.deployment_id = deployment or app.deployment_id
        #: The deployments whose pinned invocations this worker resumes: its own first, then those
        #: an operator marked compatible with it.
        self.deployments: typing.List[str] = [self.deployment_id]
        self._work = asyncio.Event()
        self.slots = Slots(concurrency, 10 * concurrency, self._slot_freed)
        self.run_queue = RunQueue(10 * concurrency)
        #: Attempts running or waiting here, by invocation id.
        self._attempts: typing.Dict[str, RunningAttempt] = {}
        #: Invocations claimed by this process and not yet running an attempt (being loaded).
        #: With `_attempts`, what the heartbeat says this process holds; it gives back the rest.
        self._starting: typing.Set[str] = set()
        #: Invocations running here whose row is not written yet (see `start_unrecorded`).
        self._unrecorded: typing.Set[str] = set()
        #: Pauses between tries to hand an invocation back after an unexpected error.
        self.release_backoff: typing.Tuple[float, ...] = (0.1, 0.5, 2.0, 5.0)
        self.liveness = Liveness(self)
        #: `take_over_deployments` (development): resume every other deployment's invocations.
        self.other_deployments = Deployments(self, take_over_deployments)
        self._cron: typing.Any = None
        #: The SDK endpoints registered over Restate's service protocol, driven here too.
        self.endpoints = EndpointDriver(self)
        #: Services a rule on a service or handler names: never started by their submitter here.
        self.ruled_services: typing.FrozenSet[str] = frozenset()
        super().__init__(
            app, database_url, schema=schema, poll_interval=poll_interval, inactivity_timeout=inactivity_timeout,
            poll_only=poll_only, pool_size=pool_size, retention_interval=retention_interval, faults=faults,
            local=self if run_handlers else None,
        )
        self.remote.followers.append(self._follow_registry)

    @property
    def max_waiting(self) -> int:
        """How many attempts may wait in memory for a timer or a result (see `Slots`)."""
        return self.slots.max_waiting

    @max_waiting.setter
    def max_waiting(self, value: int) -> None:
        self.slots.max_waiting = value

    # -- lifecycle (the hooks of `Gateway.start` and `Gateway.stop`) -------------------------

    async def _join(self) -> typing.Any:
        if not self.run_handlers:
            return await super()._join()
        await self.store.register_deployment(
            self.deployment_id, [service_metadata(service) for service in self.app.services.values()])
        await self.other_deployments.joined()
        db_now = await self.register_worker()
        self.liveness.registered()  # reaps at once
        return db_now

    async def register_worker(self) -> typing.Any:
        return await self.store.register_worker(
            self.worker_id, socket.gethostname(), os.getpid(), self.services, self.deployment_id,
            int(self.lease_seconds * 1000))

    async def _start_loops(self) -> None:
        if not self.run_handlers:
            return
        from restate_pg.worker.cron import CronLoop

        self._cron = CronLoop(self)
        await self._cron.sync()
        self._loops.append(asyncio.ensure_future(claim_loop(self)))
        self._loops.append(asyncio.ensure_future(self.liveness.heartbeat_loop()))
        self._loops.append(asyncio.ensure_future(self.liveness.reap_loop()))
        self._loops.append(asyncio.ensure_future(self._cron.run()))
        self.endpoints.sync()
        self.background(self.other_deployments.check(), "checking for stranded invocations",
                        "checked again at the next housekeeping")

    async def _read_overrides(self) -> None:
        """Also which services a rule names, and which other deployments' invocations this worker
        may resume."""
        if self.run_handlers:
            self.ruled_services = await self.store.target_rule_services()
            compatible = await self.store.compatible_deployments(self.deployment_id)
            self.deployments = [self.deployment_id, *(d for d in compatible if d != self.deployment_id)]
        await super()._read_overrides()

    async def _housekeep(self) -> None:
        """Forget completed invocations past their retention: every worker sweeps, each takes
        rows the others have not locked. And warn of invocations no live worker can resume."""
        if self.run_handlers:
            while await self.store.purge_expired() == 1000:
                pass  # a backlog: keep going
            await self.other_deployments.check()
            await self.remote.load()  # the endpoints follow it (`_follow_registry`)

    def _abandon(self) -> None:
        """Stopping: abandon running attempts; unregistering hands their invocations back at once."""
        self.abandon_attempts()

    def abandon_attempts(self) -> None:
        for attempt in list(self._attempts.values()):
            attempt.close()  # each attempt ends at its next await, after its current statement

    async def _leave(self) -> None:
        await self.endpoints.close()
        if self.run_handlers and self._started:
            try:
                await self.store.unregister_worker(self.worker_id)
            except Exception as exc:  # the lease expiry recovers them anyway
                logger.warning("could not unregister worker %s: %s", self.worker_id, exc)

    def held(self) -> typing.Set[str]:
        """The invocations this worker holds: running an attempt, or claimed and being loaded."""
        return self._attempts.keys() | self._starting | self.run_queue.held

    # -- NOTIFY dispatch: the hints for workers ----------------------------------------------

    def _on_worker_hint(self, hint: hints.Hint) -> None:
        if hint.kind is HintKind.CRON:
            if self._cron is not None:
                self._cron.wake()
        elif hint.kind is HintKind.WAKE:
            self.wake_attempt(hint.invocation_id)
        elif hint.kind is HintKind.STOP:
            self.stop_attempt(hint.invocation_id, hint.epoch)
        else:
            self._work.set()
            self.endpoints.wake()

    def _slot_freed(self) -> None:
        """A slot freed up on a full worker: every claim loop may be waiting for one, the
        endpoints' as well as the application's."""
        self._work.set()
        self.endpoints.wake()

    def _on_reconnect(self) -> None:
        super()._on_reconnect()
        self._work.set()  # hints may have been missed: look for work
        self.endpoints.wake()

    def _follow_registry(self) -> None:
        """After every read of the registry, whoever asked for it (a hint, the housekeeping, the
        ingress finding a service it did not know): drive the deployments it lists."""
        if self.run_handlers and self._started:
            self.endpoints.sync()

    # -- the services' LocalWorker -----------------------------------------------------------

    def reserve_local(self, sub: Submission) -> bool:
        """Take a slot to run `sub` here, and make it this worker's: its owner, and the deployment
        that pins it: the application's, or for a handler of an SDK endpoint the endpoint's latest
        deployment, whose attempts this worker drives too (also the runtime `Host`'s, for calls
        between handlers)."""
        if not self.run_handlers or sub.flow_controlled or sub.service in self.ruled_services:
            return False  # flow control: only a claim checks its rules
        if self.app.handler(sub.service, sub.handler) is not None:
            deployment = self.deployment_id
        else:
            remote = self.endpoints.latest.get(sub.service)
            if remote is None or remote.handler(sub.service, sub.handler) is None:
                return False
            deployment = remote.id
        if not self.slots.try_take() and not (_queues(sub) and self.run_queue.reserve(sub.id)):
            return False
        sub.owner, sub.deployment = self.worker_id, deployment
        return True

    def release_slot(self, invocation_id: str) -> None:
        if not self.run_queue.cancel(invocation_id):
            self.slots.release()

    def start_submitted(self, sub: Submission, state: typing.Optional[typing.Dict[str, bytes]] = None) -> None:
        if sub.id in self.run_queue.held:
            self.run_queue.push(_record_of(sub), state)
            self._start_queued()
        else:
            self._start_fresh(_record_of(sub), state=state)

    def _start_queued(self) -> None:
        if self._stopping:  # leaving: unregistering hands the queued sends back with the rest
            return
        for record, state in self.run_queue.startable(self.slots):
            self._start_fresh(record, state=state)

    def start_unrecorded(self, sub: Submission) -> None:
        self._unrecorded.add(sub.id)
        self._start_fresh(_record_of(sub), create=sub)

    def is_unrecorded(self, invocation_id: str) -> bool:
        return invocation_id in self._unrecorded

    def wake_attempt(self, invocation_id: str) -> None:
        attempt = self._attempts.get(invocation_id)
        if attempt is not None:
            attempt.wake()

    def stop_attempt(self, invocation_id: str, epoch: typing.Optional[int] = None) -> None:
        attempt = self._attempts.get(invocation_id)
        if attempt is not None and (epoch is None or attempt.lease.epoch == epoch):
            logger.info("attempt %d of %s stopped: its lease was taken away", attempt.lease.epoch, invocation_id)
            attempt.close()  # its writes would be refused anyway: end it now

    # -- the runtime's Host ------------------------------------------------------------------

    def setting(self, handler: Handler, name: str) -> typing.Any:
        return self.settings.setting(handler, name)

    def attempt_waiting(self, waiting: bool) -> bool:
        if waiting:
            if not self.slots.start_waiting():
                return False
            self._start_queued()
            return True
        self.slots.stop_waiting()
        return True

    def after_flush(self, batch: Batch, result: FlushResult, lease: typing.Optional[Lease] = None) -> None:
        signals = self.signals
        for target, owner in result.woken:
            signals.wake(target, owner)
        if batch.create is not None:
            self._unrecorded.discard(batch.create.id)
        for sub, submitted in zip(batch.submissions, result.submitted, strict=True):
            self.submissions.after_submit(sub, submitted)
        outcome = batch.outcome
        if isinstance(outcome, Complete) and lease is not None:
            invocation_id = lease.invocation_id
            told = InvocationResult(outcome.output, outcome.failure)
            if outcome.caller is not None:
                signals.wake(outcome.caller[0], result.caller_owner)
            if result.next_holder is None:
                signals.tell_waiter(invocation_id, result.waiter, told)
            else:  # leased here with the key: start it, no reads needed
                self.slots.take()
                finished = self._attempts.get(invocation_id)
                self._start_fresh(result.next_holder, state=finished.known_state() if finished else None)
                # the caller is answered a turn later, after the next holder's request has left:
                # a busy key's calls run one after another, and that request is on their path
                asyncio.get_running_loop().call_soon(signals.tell_waiter, invocation_id, result.waiter, told)

    # -- running attempts ---------------------------------------------------------------------

    def _start_fresh(
        self,
        record: InvocationRecord,
        create: typing.Optional[Submission] = None,
        state: typing.Optional[typing.Dict[str, bytes]] = None,
    ) -> None:
        """Run an invocation leased to this process at epoch 1, which has no journal yet."""
        lease = Lease(record.id, self.worker_id, 1, 1)
        handler = self.app.handler(record.service, record.handler)
        if handler is not None:
            self.launch(Attempt(self, lease, record, handler, create=create, state=state))
            return
        remote = self.endpoints.attempt_for_record(record, lease, state, create)
        if remote is None:  # its deployment is gone: hand it back to whoever can run it
            self.slots.release()
            self.background(self.release_lease(lease, "its deployment is not registered here"), "hand-back")
            return
        self.launch(remote)

    def launch(self, attempt: RunningAttempt) -> None:
        """Run `attempt` (its slot taken). It is registered at once, before it first runs,
        so that the heartbeat counts its lease as held from the moment the lease is known."""
        self._attempts[attempt.invocation_id] = attempt
        self.background(self._run_attempt(attempt), "attempt")

    async def _run_attempt(self, attempt: RunningAttempt) -> None:
        invocation_id = attempt.invocation_id
        try:
            await attempt.run()
        except asyncio.CancelledError:
            raise
        except SdkInternalBaseException as exc:
            # Its context was closed under it: by a pause or kill (the lease is gone, and the
            # release below is refused by the fence) or by stop() (unregistering hands it back).
            if not self._stopping:
                await self.release_lease(attempt.lease, f"attempt ended: {exc!r}")
        except StoreUnavailable as exc:  # the database went away under it: not a bug
            logger.warning("attempt %d of %s lost its database connection (%s); handing it back",
                           attempt.lease.epoch, invocation_id, exc)
            await self.release_lease(attempt.lease, f"database connection lost: {exc}")
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
            await self.release_lease(attempt.lease, reason)
        finally:
            if self._attempts.get(invocation_id) is attempt:
                del self._attempts[invocation_id]
            if invocation_id in self._unrecorded:  # ended before anything was written
                self._unrecorded.discard(invocation_id)
                self.results.waiters.notify(
                    invocation_id, InvocationResult(None, Failure(500, "the invocation ended before it was recorded; retry the request"))
                )
            self.slots.release()
            self._start_queued()

    async def release_lease(self, lease: Lease, reason: str) -> None:
        """Give an invocation back after an unexpected error, so it is retried instead of stuck.
        If that fails too, this process's heartbeat gives it back: it no longer holds it."""
        for delay in self.release_backoff:
            try:
                await self.store.flush(lease, Batch(outcome=Retry("backing-off", 1000, reason, 500)))
                # The fence passed, so the invocation exists even if the flush that created it
                # looked lost: its caller keeps waiting for the retry's result.
                self._unrecorded.discard(lease.invocation_id)
                return
            except Fenced:
                return
            except Exception:
                await asyncio.sleep(delay)
        logger.warning("could not hand %s back; this worker's heartbeat will", lease.invocation_id)


def _queues(sub: Submission) -> bool:
    """Whether `sub` may wait in the run queue: a send through the ingress or a client (a caller
    waiting here, or a handler's call committed with its flush, takes a slot or none)."""
    return sub.waiter is None and sub.invoked_by == "ingress"


def _record_of(sub: Submission) -> InvocationRecord:
    """The invocation a submission leased to this process starts as."""
    return InvocationRecord(
        id=sub.id, service=sub.service, handler=sub.handler, key=sub.key, input=sub.input,
        headers=sub.headers, idempotency_key=sub.idempotency_key, caller_id=sub.caller_id,
        caller_command=sub.caller_command, status="invoked", scope=sub.scope, limit_key=sub.limit_key,
    )


async def run_worker(
    app: App,
    database_url: str,
    schema: str = "restate",
    *,
    concurrency: typing.Optional[int] = None,
    poll_only: bool = False,
    alongside: typing.Optional[typing.Callable[["Engine"], typing.AsyncContextManager[typing.Any]]] = None,
    **options: typing.Any,
) -> None:
    """Run a worker until cancelled: claim and execute the application's invocations. `alongside`
    is entered once the worker has started and left before it stops (the CLI serves `GET /metrics`
    in it): the worker itself knows nothing of HTTP."""
    engine = Engine(app, database_url, schema=schema, concurrency=concurrency, poll_only=poll_only, **options)
    await engine.start()
    try:
        if alongside is None:
            await engine.run_forever()
        else:
            async with alongside(engine):
                await engine.run_forever()
    finally:
        await engine.stop()
