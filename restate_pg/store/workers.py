"""Worker processes: their registration and liveness, the leases they claim, and the hints that
wake them."""

from __future__ import annotations

import typing
from datetime import datetime

from restate_pg.core.errors import StoreUnavailable
from restate_pg.core.hints import Hint
from restate_pg.core.records import ClaimedTask, Lease
from restate_pg.store.errors import translated
from restate_pg.store.gateway import StorePart
from restate_pg.store.rows import named_rows

#: `HEARTBEAT` leaves its second column unnamed.
_HEARTBEAT_COLUMNS = ("db_now", "released")
#: `TASK_GAUGES` leaves its last two columns unnamed.
_GAUGE_COLUMNS = ("service", "status", "count")


class Workers(StorePart):
    """A worker's life (register, heartbeat, unregister, reap the dead) and its claims."""

    async def register_worker(
        self, worker_id: str, hostname: str, pid: int, services: typing.Sequence[str], deployment: typing.Optional[str] = None,
        lease_ms: typing.Optional[int] = None,
    ) -> datetime:
        """Announce a worker; `lease_ms` is how long its heartbeats may lapse before others reap it."""
        row = await self._db.first(
            self._db.q.REGISTER_WORKER,
            {"id": worker_id, "hostname": hostname, "pid": pid, "services": list(services), "deployment": deployment,
             "lease_ms": lease_ms},
        )
        assert row is not None
        return typing.cast(datetime, row["db_now"])

    async def heartbeat(
        self, worker_id: str, held: typing.Collection[str], grace_ms: int
    ) -> typing.Optional[typing.Tuple[datetime, typing.List[str]]]:
        """Renew the worker's leases and give back those older than `grace_ms` that it does not
        hold an attempt for (`held`); returns the database time and what was given back, or
        None if the worker was declared dead.

        It runs on a connection of its own: a worker's liveness must not wait for a free pool
        connection, nor for any statement of its own that waits on another worker's locks."""
        faults = self._db.faults
        if faults is not None:
            faults.check("heartbeat", "before")
        conn = await self._db.own_connection()
        try:
            with translated():
                cur = conn.cursor(row_factory=named_rows(_HEARTBEAT_COLUMNS))
                await cur.execute(self._db.q.HEARTBEAT, {"id": worker_id, "held": list(held), "grace_ms": grace_ms})
                row = await cur.fetchone()
        except StoreUnavailable:
            await self._db.drop_own_connection()
            raise
        if faults is not None:
            faults.check("heartbeat", "after")
        return None if row is None else (row["db_now"], list(row["released"]))

    async def reap(self, lease_ms: int) -> typing.List[str]:
        return [row["invocation_id"] for row in await self._db.rows(self._db.q.REAP_WORKERS, {"lease_ms": lease_ms})]

    async def unregister_worker(self, worker_id: str) -> None:
        await self._db.rows(self._db.q.UNREGISTER_WORKER, {"id": worker_id})

    async def claim(
        self, owner: str, services: typing.Sequence[str], limit: int, deployments: typing.Sequence[str] = (),
        fresh: typing.Optional[typing.Sequence[str]] = None,
    ) -> typing.List[ClaimedTask]:
        """Lease due tasks (`claim_tasks`): unpinned ones of the `fresh` services (default: all
        of `services`), pinned to `deployments[0]` (the worker's own) as they start, and those
        pinned to any of `deployments`."""
        q = self._db.q
        params = {"owner": owner, "services": list(services), "limit": limit,
                  "fresh": list(services if fresh is None else fresh),
                  "deployments": list(deployments), "deployment": deployments[0] if deployments else None}
        await self._db.rows(q.START_DUE_SCHEDULED, params)
        rows = await self._db.rows(q.CLAIM_TASKS, params)
        return [
            ClaimedTask(Lease(row["invocation_id"], owner, row["epoch"], row["attempt"]), wakeups=row["wakeups"],
                        previous_status=row["previous_status"], db_now=row["db_now"], lag=row["lag"])
            for row in rows or []
        ]

    async def next_due(self, services: typing.Sequence[str], deployments: typing.Sequence[str] = (),
                       fresh: typing.Optional[typing.Sequence[str]] = None) -> typing.Optional[float]:
        row = await self._db.first(self._db.q.NEXT_DUE, {"services": list(services), "deployments": list(deployments),
                                                         "fresh": list(services if fresh is None else fresh)})
        return None if row is None else row["seconds"]

    async def task_gauges(self) -> typing.List[typing.Tuple[str, str, int]]:
        """(service, status, count) of invocations not completed (`task_gauges`)."""
        rows = await self._db.rows(self._db.q.TASK_GAUGES, {}, _GAUGE_COLUMNS)
        return [(row["service"], row["status"], row["count"]) for row in rows]

    async def db_now(self) -> datetime:
        return typing.cast(datetime, await self._db.scalar(self._db.q.DB_NOW, {}))

    async def notify(self, channel: str, hint: Hint) -> None:
        await self._db.rows(self._db.q.NOTIFY, {"channel": channel, "payload": hint.encode()})
