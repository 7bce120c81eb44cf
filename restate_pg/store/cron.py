"""Cron schedules: those declared in code (synced at start-up) and those made at run time, and
the transaction that fires a due tick exactly once, whichever worker claims it."""

from __future__ import annotations

import typing
from dataclasses import dataclass
from datetime import datetime

from psycopg.types.json import Jsonb

from restate_pg.core.records import Submission
from restate_pg.store import codec
from restate_pg.store.gateway import StorePart
from restate_pg.store.operators import lock_params
from restate_pg.store.rows import named_rows

#: `SUBMIT_INVOCATION` and `NEXT_CRON_DUE` leave their only column unnamed.
_SUBMITTED = named_rows(("status",))


@dataclass(frozen=True)
class CronFiring:
    """What one due schedule does now: the invocations of its ticks, and its next tick."""

    submissions: typing.Sequence[Submission]
    next_at: datetime
    last_tick: typing.Optional[datetime]


def _cron_params(row: typing.Mapping[str, typing.Any], source: str) -> typing.Dict[str, typing.Any]:
    return {**row, "headers": Jsonb(dict(row.get("headers") or {})), "source": source,
            "enabled": row.get("enabled", True)}


class Crons(StorePart):
    """Schedules and their firing."""

    async def create_cron(self, row: typing.Mapping[str, typing.Any]) -> bool:
        """Register a run-time schedule (`create_cron`); False if the name is taken."""
        return await self._db.execute(self._db.q.CREATE_CRON, _cron_params(row, "api"))

    async def sync_code_crons(
        self, rows: typing.Sequence[typing.Mapping[str, typing.Any]], services: typing.Sequence[str]
    ) -> typing.Tuple[typing.List[str], typing.List[str]]:
        """Make the code-declared schedules of `services` be `rows`, in one transaction; returns
        the names refused (taken by run-time schedules) and the names deleted."""
        q = self._db.q
        refused: typing.List[str] = []
        async with self._db.connection() as conn, conn.transaction():
            cur = conn.cursor(row_factory=named_rows())
            for row in rows:
                await cur.execute(q.SYNC_CODE_CRON, _cron_params(row, "code"))
                if not await cur.fetchall():
                    refused.append(row["name"])
            await cur.execute(q.DELETE_STALE_CODE_CRONS, {"services": list(services), "names": [row["name"] for row in rows]})
            deleted = [gone["name"] for gone in await cur.fetchall()]
        return refused, deleted

    async def list_crons(self, name: typing.Optional[str] = None) -> typing.List[typing.Dict[str, typing.Any]]:
        return await self._db.rows(self._db.q.LIST_CRONS, {"name": name})

    async def set_cron_enabled(self, name: str, enabled: bool, next_at: datetime) -> bool:
        """Pause or resume a schedule (`set_cron_enabled`); False if there is none of that name."""
        return await self._db.execute(self._db.q.SET_CRON_ENABLED, {"name": name, "enabled": enabled, "next_at": next_at})

    async def delete_cron(self, name: str) -> bool:
        return await self._db.execute(self._db.q.DELETE_CRON, {"name": name})

    async def next_cron_due(self, targets: typing.Sequence[str]) -> typing.Optional[float]:
        """Seconds until the next schedule of these handlers ('Service/handler') is due."""
        return typing.cast(typing.Optional[float], await self._db.scalar(self._db.q.NEXT_CRON_DUE, {"targets": list(targets)}))

    async def fire_due_crons(
        self,
        targets: typing.Sequence[str],
        limit: int,
        plan: typing.Callable[[typing.Dict[str, typing.Any]], CronFiring],
    ) -> typing.List[typing.Tuple[str, typing.List[str]]]:
        """Claim due schedules of these handlers ('Service/handler', `claim_due_crons`), submit
        the invocations `plan` makes of each and advance it, all in one transaction: a tick fires
        exactly once, whichever worker claims it. Returns each schedule's name and the ids of
        the invocations created."""
        q = self._db.q
        fired: typing.List[typing.Tuple[str, typing.List[str]]] = []
        async with self._db.connection() as conn, conn.transaction():
            cur = conn.cursor(row_factory=named_rows())
            await cur.execute(q.CLAIM_DUE_CRONS, {"targets": list(targets), "limit": limit})
            for job in await cur.fetchall():
                firing = plan(job)
                created: typing.List[str] = []
                for sub in firing.submissions:
                    if sub.exclusive:
                        await conn.execute(q.LOCK_OBJECT_KEY, lock_params(sub.service, sub.key or ""))
                    submitting = conn.cursor(row_factory=_SUBMITTED)
                    await submitting.execute(q.SUBMIT_INVOCATION, {"doc": Jsonb(codec.submission_doc(sub))})
                    started = await submitting.fetchone()
                    if started is not None and started["status"] is not None:
                        created.append(sub.id)
                last = firing.submissions[-1] if firing.submissions else None
                await conn.execute(q.ADVANCE_CRON, {
                    "name": job["name"], "next_at": firing.next_at, "tick": firing.last_tick,
                    "invocation_id": last.id if last is not None else None})
                fired.append((job["name"], created))
        return fired
