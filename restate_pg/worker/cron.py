"""The cron loop each worker runs: fire due schedules of the services it hosts.

Every worker runs it; exactly one invocation starts per tick all the same, because a schedule
is claimed with `FOR UPDATE SKIP LOCKED` and its invocations are submitted and its `next_at`
advanced in that same transaction. The invocation's id is derived from (job, tick), so even a
tick fired twice (a job deleted and re-created mid-tick) lands on the same row. The loop sleeps
until the earliest `next_at`, and is woken early by a "cron" hint when schedules change.
"""

from __future__ import annotations

import asyncio
import logging
import typing
from datetime import datetime, timedelta

from restate_pg.api.cron import InvalidCron, due_ticks, next_tick
from restate_pg.api.errors import TerminalError
from restate_pg.api.flow import FlowOptions
from restate_pg.core.ids import deterministic_invocation_id
from restate_pg.runtime.submission import new_submission
from restate_pg.services.schedules import cron_row
from restate_pg.store.driver import CronFiring

if typing.TYPE_CHECKING:
    from restate_pg.worker.engine import Engine

logger = logging.getLogger("restate_pg.cron")

#: Headers every cron invocation carries: which schedule started it, and for which tick.
CRON_HEADER = "x-restate-pg-cron"
TICK_HEADER = "x-restate-pg-cron-tick"
#: Schedules claimed per transaction.
CLAIM_LIMIT = 16
#: The longest sleep between looks (a missed hint costs at most this), and the pause when a due
#: schedule is locked by another worker's transaction, about to commit.
MAX_SLEEP = 60.0
CONTENDED_PAUSE = 0.2




class CronLoop:
    """Fires the due schedules of one worker's services."""

    def __init__(self, engine: "Engine") -> None:
        self.engine = engine
        self._wake = asyncio.Event()

    def wake(self) -> None:
        self._wake.set()

    async def sync(self) -> None:
        """Make the `cron_job` table hold the schedules this app declares in code."""
        engine = self.engine
        now = await engine.store.db_now()
        rows = [cron_row(cron, now) for cron in engine.app.crons.values()]
        refused, deleted = await engine.store.sync_code_crons(rows, engine.services)
        for name in refused:
            logger.warning("cron job %r is declared in code but a schedule made at run time has that name; "
                           "the run-time one is kept", name)
        if deleted:
            logger.info("deleted cron job(s) no longer declared in code: %s", ", ".join(deleted))

    def plan(self, job: typing.Dict[str, typing.Any]) -> CronFiring:
        """The invocations a due schedule starts now, by its catch-up policy, and its next tick."""
        now: datetime = job["db_now"]
        try:
            ticks = due_ticks(job["schedule"], job["timezone"], job["next_at"], now, job["catch_up"])
            next_at = next_tick(job["schedule"], job["timezone"], now)
            flow = FlowOptions(job["scope"], job["limit_key"], job["priority"])
        except (InvalidCron, TerminalError) as exc:  # only a row written behind restate-pg's back gets here
            logger.error("cron job %r cannot be scheduled, parked for a year: %s", job["name"], exc)
            return CronFiring([], now + timedelta(days=365), None)
        if not ticks:
            if job["next_at"] <= now - timedelta(seconds=1):
                logger.info("cron job %r: missed tick(s) since %s skipped (catch_up=%s)",
                            job["name"], job["next_at"].isoformat(), job["catch_up"])
            return CronFiring([], next_at, None)
        handler = self.engine.handler(job["service"], job["handler"])
        assert handler is not None  # claimed only for the handlers this worker hosts or drives
        submissions = [
            new_submission(
                handler, job["key"], bytes(job["input"] or b""),
                headers={**(job["headers"] or {}), CRON_HEADER: job["name"], TICK_HEADER: tick.isoformat()},
                invoked_by="cron",
                invocation_id=deterministic_invocation_id("cron", job["name"], tick.isoformat(), key=job["key"]),
                flow=flow,
            )
            for tick in ticks
        ]
        return CronFiring(submissions, next_at, ticks[-1])

    async def run(self) -> None:
        engine = self.engine
        while True:
            try:
                self._wake.clear()
                # the handlers this worker hosts or drives (SDK endpoints'): it takes the ticks of no
                # other (during a rolling upgrade, a worker of the previous version leaves a new
                # handler's schedule alone)
                services = {**engine.remote.services, **engine.app.services}
                targets = [f"{name}/{handler}" for name, service in services.items() for handler in service.handlers]
                fired = await engine.store.fire_due_crons(targets, CLAIM_LIMIT, self.plan)
                if any(created for _, created in fired):
                    engine.signals.hint_work()
                if len(fired) == CLAIM_LIMIT:
                    continue
                due = await engine.store.next_cron_due(targets)
                timeout = MAX_SLEEP if due is None else min(MAX_SLEEP, due)
                if timeout <= 0:  # due, yet not claimed: another worker is firing it right now
                    timeout = CONTENDED_PAUSE
                # not wait_for: on Python 3.11 it can swallow a cancellation that races a wake-up
                alarm = asyncio.get_running_loop().call_later(timeout, self._wake.set)
                try:
                    await self._wake.wait()
                finally:
                    alarm.cancel()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.warning("cron loop: %s; retrying in %.1fs", exc, engine.poll_interval)
                await asyncio.sleep(engine.poll_interval)
