"""A worker's liveness: its heartbeat renews its leases, and reaping recovers dead workers' work.

Both loops run apart from the claim loop and their statements have connections of their own, so a
worker's liveness never waits for a free connection or for another worker's locks.
"""

from __future__ import annotations

import asyncio
import typing

from restate_pg.observability import logs

if typing.TYPE_CHECKING:
    from restate_pg.worker.engine import Engine

logger = logs.internal_logger("restate_pg.worker")


class Liveness:
    """The heartbeat and reap loops of one worker."""

    def __init__(self, engine: "Engine") -> None:
        self.engine = engine
        #: Since when (event-loop time) this worker's heartbeats have all succeeded; None while
        #: they fail. Reaping waits for a lease of them (see `reap_loop`).
        self.beating_since: typing.Optional[float] = None

    def registered(self) -> None:
        """The worker registered itself just now: it may reap at once."""
        self.beating_since = asyncio.get_running_loop().time() - self.engine.lease_seconds

    async def heartbeat_loop(self) -> None:
        """Renew this worker's leases, and give back those it holds without an attempt."""
        engine = self.engine
        interval = engine.lease_seconds / 3
        grace_ms = int(engine.lease_seconds * 1000)
        while True:
            await asyncio.sleep(interval)
            try:
                beat = await engine.store.heartbeat(engine.worker_id, engine.held(), grace_ms)
                engine.failures.succeeded("heartbeat")
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                engine.failures.failed("heartbeat", exc, "retrying")
                self.beating_since = None
                continue
            if self.beating_since is None:
                self.beating_since = asyncio.get_running_loop().time()
            if beat is None:
                logger.error("worker %s was declared dead (heartbeat too late); abandoning its attempts", engine.worker_id)
                engine.abandon_attempts()
                await engine.register_worker()
                continue
            engine.clock.sync(beat[0])
            if beat[1]:
                logger.warning("gave back %d invocation(s) this worker held without running them: %s",
                               len(beat[1]), ", ".join(beat[1][:5]))
                engine._work.set()

    async def reap_loop(self) -> None:
        """Make the work of dead workers claimable; rows locked elsewhere wait for the next round.

        Only a worker whose own heartbeats have succeeded for a whole lease reaps: after the
        database was unreachable, every worker's heartbeat is stale, and the first to reconnect
        would otherwise declare all the others dead and throw their work away."""
        engine = self.engine
        lease_ms = int(engine.lease_seconds * 1000)
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(engine.lease_seconds / 3)
            if self.beating_since is None or loop.time() - self.beating_since < engine.lease_seconds:
                continue
            try:
                reaped = await engine.store.reap(lease_ms)
                engine.failures.succeeded("reaping")
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                engine.failures.failed("reaping", exc, "retrying")
                continue
            if reaped:
                logger.warning("recovered %d invocation(s) of dead workers", len(reaped))
                engine._work.set()
