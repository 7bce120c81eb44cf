"""The claim loop: take due invocations from the database as slots free up, and start them.

Work this process submits itself starts without a claim (see `restate_pg.services.submissions`);
the claim loop picks up everything else: submissions of other processes, resumed and retried
invocations, timers that came due, and the work of dead workers once it is reaped.
"""

from __future__ import annotations

import asyncio
import typing
from dataclasses import dataclass

from restate_pg.core.records import ClaimedTask, LoadedInvocation
from restate_pg.observability.metrics import METRICS
from restate_pg.runtime.attempt import Attempt

if typing.TYPE_CHECKING:
    from restate_pg.worker.engine import Engine, RunningAttempt


@dataclass
class ClaimScope:
    """What one claim loop takes: pinned invocations of `services` pinned to one of
    `deployments` (its own first, which new ones are pinned to), and new ones of `fresh`."""

    services: typing.Sequence[str]
    deployments: typing.Sequence[str]
    fresh: typing.Sequence[str]


class Claimant(typing.Protocol):
    """A claim loop's source of work: the application's handlers, or one SDK endpoint."""

    work: asyncio.Event

    def scope(self) -> ClaimScope: ...

    def attempt_for(self, task: ClaimedTask, entry: LoadedInvocation) -> typing.Optional["RunningAttempt"]:
        """The attempt that runs a claimed invocation here, or None if this process cannot."""


class AppClaimant:
    """The application's in-process handlers."""

    def __init__(self, engine: "Engine") -> None:
        self.engine = engine
        self.work = engine._work

    def scope(self) -> ClaimScope:
        return ClaimScope(self.engine.services, self.engine.deployments, self.engine.services)

    def attempt_for(self, task: ClaimedTask, entry: LoadedInvocation) -> typing.Optional["RunningAttempt"]:
        invocation = entry.invocation
        handler = self.engine.app.handler(invocation.service, invocation.handler)
        if handler is None:
            return None
        return Attempt(self.engine, task.lease, invocation, handler, entry.journal, entry.mailbox, task.wakeups)

#: How long the claim loop waits before looking again at due tasks it could not claim.
CONTENDED_PAUSE = 0.02
#: The most invocations claimed in one statement.
BATCH_LIMIT = 32


async def claim_loop(engine: "Engine", claimant: typing.Optional[Claimant] = None) -> None:
    """Claim while slots are free; sleep until the next task is due, a hint, or `poll_interval`."""
    store, slots = engine.store, engine.slots
    source: Claimant = claimant or AppClaimant(engine)
    while True:
        try:
            source.work.clear()
            scope = source.scope()
            if not scope.services:  # an application with no services (endpoints only): nothing to poll
                await source.work.wait()
                continue
            free = slots.free
            claimed: typing.Sequence[ClaimedTask] = []
            if free > 0 and scope.deployments:
                claimed = await store.claim(engine.worker_id, scope.services, min(free, BATCH_LIMIT),
                                            scope.deployments, scope.fresh)
                engine.failures.succeeded("claim")
                if claimed:
                    engine.clock.sync(claimed[0].db_now)
                    slots.take(len(claimed))
                    engine._starting.update(c.lease.invocation_id for c in claimed)
                    await start_claimed(engine, claimed, source)
                    if len(claimed) == min(free, BATCH_LIMIT):
                        continue
            due = await store.next_due(scope.services, scope.deployments, scope.fresh) if free > 0 else None
            timeout = engine.poll_interval if due is None else max(0.0, min(due, engine.poll_interval))
            if not claimed and timeout == 0:
                # due but not claimable: row-locked by a transaction under way (a database
                # step, another worker's claim); look again shortly rather than spin
                timeout = CONTENDED_PAUSE
            if timeout > 0:
                try:
                    await asyncio.wait_for(source.work.wait(), timeout)
                except asyncio.TimeoutError:
                    pass
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            engine.failures.failed("claim", exc, f"retrying in {engine.poll_interval:.1f}s")
            await asyncio.sleep(engine.poll_interval)


async def start_claimed(engine: "Engine", claimed: typing.Sequence[ClaimedTask], source: typing.Optional[Claimant] = None) -> None:
    """Start every claimed task (its slot taken), or hand it back: whatever raises, none is left
    leased here without an attempt (the heartbeat would give it back, but only after its grace),
    and the slot of each one not started is released, once."""
    source = source or AppClaimant(engine)
    unstarted = {task.lease.invocation_id: task for task in claimed}
    try:
        loaded = await engine.store.load(list(unstarted))
        for task in claimed:
            invocation_id = task.lease.invocation_id
            entry = loaded.get(invocation_id)
            attempt = None if entry is None else source.attempt_for(task, entry)
            if entry is None or attempt is None:
                continue  # handed back below
            METRICS.observe(METRICS.claim_lag, (entry.invocation.service, entry.invocation.handler), task.lag)
            engine.launch(attempt)
            del unstarted[invocation_id]
            engine._starting.discard(invocation_id)
    except Exception as exc:
        engine.failures.failed("loading claimed invocations", exc, "handing them back")
    finally:
        for invocation_id, task in unstarted.items():
            engine._starting.discard(invocation_id)
            engine.slots.release()
            engine.background(engine.release_lease(task.lease, "could not start it here"), "hand-back")
