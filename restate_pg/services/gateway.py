"""`Gateway`: one process's services, and the life of a process that runs no handlers.

A gateway owns the process's connection pool, its LISTEN connection, its clock and its id, and
offers every transport the same services: `submissions`, `results`, `awakeables`, `operations`
and the operators' `settings`. An ingress started with `run_handlers=False`, the SQL client and
the CLI run a bare gateway; a worker (`restate_pg.worker.engine.Engine`) is a gateway that also
claims and runs invocations, and plugs itself in as the services' `LocalWorker`.
"""

from __future__ import annotations

import asyncio
import os
import typing
import uuid

from restate_pg.api.app import App
from restate_pg.api.definitions import Handler, ServiceDefinition
from restate_pg.core import hints
from restate_pg.core.hints import HintKind, process_channel, work_channel
from restate_pg.observability import logs
from restate_pg.observability.failures import FailureLog
from restate_pg.runtime.clock import DbClock
from restate_pg.services.awakeables import Awakeables
from restate_pg.services.operations import Operations
from restate_pg.services.ports import LocalWorker
from restate_pg.services.remote import RemoteServices
from restate_pg.services.results import Results, ResultWaiters
from restate_pg.services.settings import ServiceSettings
from restate_pg.services.signals import Signals
from restate_pg.services.submissions import Submissions
from restate_pg.store.driver import Store
from restate_pg.store.faults import FaultPlan

# The process's background failures have always been logged under this name (see docs/faults.md).
logger = logs.internal_logger("restate_pg.worker")


class Gateway:
    """The services of one process, started and stopped with it (`start()`, `stop()`)."""

    #: Whether this process runs handlers (a worker); see `restate_pg.worker.engine.Engine`.
    run_handlers = False

    def __init__(
        self,
        app: App,
        database_url: str,
        *,
        schema: str = "restate",
        poll_interval: float = 1.0,
        inactivity_timeout: float = 5.0,
        poll_only: bool = False,
        pool_size: int = 10,
        retention_interval: float = 60.0,
        faults: typing.Optional[FaultPlan] = None,
        local: typing.Optional[LocalWorker] = None,
    ) -> None:
        self.app = app
        self.schema = schema
        self.poll_interval = poll_interval
        self.default_inactivity_timeout = inactivity_timeout
        self.poll_only = poll_only
        self.stop_grace = 2.0
        self.retention_interval = retention_interval
        role = "worker" if self.run_handlers else "ingress"
        self.store = Store(database_url, schema, max_size=pool_size, prepare=not poll_only,
                           faults=faults if faults is not None else FaultPlan.from_env(),
                           application_name=f"restate-pg {role} {os.getpid()}")
        self.clock = DbClock()
        self.store.observe_clock(self.clock.bound)  # every group commit bounds the database's clock
        #: This process's id: its NOTIFY channel, the `waiter` of the calls it waits for, and (in a
        #: worker) the owner of the leases it holds.
        self.worker_id = uuid.uuid4().hex[:16]
        #: The services of this process's application, by name.
        self.services = sorted(app.services)
        self.failures = FailureLog(logger)
        self.settings = ServiceSettings(self.store, app)
        waiters = ResultWaiters()
        self.signals = Signals(self.store, self.worker_id, waiters, self.background, local)
        self.results = Results(self.store, waiters, self.worker_id, poll_interval, local)
        self.submissions = Submissions(self.store, self.results, self.signals, self.clock, local)
        self.awakeables = Awakeables(self.store, self.signals)
        self.operations = Operations(self.store, self.signals)
        #: The services SDK endpoints registered (Restate's service protocol).
        self.remote = RemoteServices(self.store)
        self._tasks: typing.Set["asyncio.Task[typing.Any]"] = set()
        self._loops: typing.List["asyncio.Task[None]"] = []
        self._listener: typing.Any = None
        self._overrides_read = asyncio.Lock()
        self._started = False
        self._stopping = False

    @property
    def work_channel(self) -> str:
        return work_channel(self.schema)

    @property
    def own_channel(self) -> str:
        return process_channel(self.schema, self.worker_id)

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        await self.store.open()
        self.clock.sync(await self._join())  # at once: the later the sample, the looser its bound
        if not self.poll_only:
            from restate_pg.store.listener import Listener

            self._listener = Listener(self.store.conninfo, [self.work_channel, self.own_channel], self._on_notify, self._on_reconnect)
            self._listener.start()
            try:
                await asyncio.wait_for(self._listener.connected.wait(), 5)
            except asyncio.TimeoutError:
                logger.warning("LISTEN is not connected yet; relying on polling")
        # Read after listening: a change committed before the LISTEN is in this read, one after
        # it is hinted (read first, a registration committed in between went unseen for a minute).
        await self.load_overrides()
        await self._start_loops()
        self._loops.append(asyncio.ensure_future(self._housekeeping_loop()))
        self._started = True

    async def check_health(self) -> None:
        """Raise `DatabaseUnavailable` unless the database answers within a second: what the
        health endpoints (`/health`, `/restate/health`) answer, 503 or 200, in time for a probe."""
        await self.store.check_health()

    async def prepare_schema(self, *, migrate: bool = False) -> None:
        """Before `start()` in an application's process (`create_router`, `create_client`): with
        `migrate`, bring the schema to this version's revision (`restate-pg migrate`, under its
        lock); else raise `SchemaNotMigrated` with the CLI's one-line message unless it is there,
        rather than the driver's `UndefinedTable` from the first statement. One connection of its
        own, once per process; the CLI's commands check before they build a process."""
        from restate_pg.store import migrate as migrations

        step = migrations.upgrade if migrate else migrations.check_migrated
        await asyncio.to_thread(step, self.store.conninfo, self.schema)

    async def _join(self) -> typing.Any:
        """Announce this process (a worker registers itself); returns the database's time."""
        return await self.store.db_now()

    async def _start_loops(self) -> None:
        """Start the process's own loops (a worker's: claiming, heartbeats, reaping, cron)."""

    async def load_overrides(self) -> None:
        """Read the settings operators changed (see `ServiceSettings`), and the services SDK
        endpoints registered: one read at a time (hints, reconnections, the housekeeping and the
        admin API all ask), so that a read that started earlier never finishes last."""
        async with self._overrides_read:
            await self._read_overrides()

    async def _read_overrides(self) -> None:
        await self.settings.load()
        await self.remote.load()

    def handler(self, service: str, name: str) -> typing.Optional[Handler]:
        """A handler of the application, or of a registered SDK endpoint."""
        return self.app.handler(service, name) or self.remote.handler(service, name)

    def service(self, name: str) -> typing.Optional[ServiceDefinition]:
        return self.app.services.get(name) or self.remote.services.get(name)

    async def stop(self) -> None:
        """Stop the loops and the background work, then close the connections."""
        self._stopping = True
        for loop_task in self._loops:
            loop_task.cancel()
        self._abandon()
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
        await self._leave()
        await self.store.close()

    def _abandon(self) -> None:
        """Stopping: end what runs in the background at its next await (a worker's attempts)."""

    async def _leave(self) -> None:
        """Stopping: the background work has ended; say goodbye before the pool closes."""

    async def run_forever(self) -> None:
        await asyncio.Event().wait()

    # -- background work ---------------------------------------------------------------------

    def background(self, coro: typing.Awaitable[typing.Any], kind: str, consequence: str = "") -> None:
        """Run `coro` without waiting for it; a failure is logged once per outage (`FailureLog`)."""
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        self.failures.watch(kind, task, consequence)

    def _on_notify(self, channel: str, payload: str) -> None:
        """A hint on this process's channels: the services' own, else the worker's."""
        hint = hints.parse_hint(payload)
        if hint.kind is HintKind.SERVICES:
            self.background(self.load_overrides(), "reading service settings", "read again at the next housekeeping")
        elif hint.kind is HintKind.DONE:
            self.results.waiters.notify(hint.invocation_id, None)
        else:
            self._on_worker_hint(hint)

    def _on_worker_hint(self, hint: hints.Hint) -> None:
        """A hint for workers (work, wake, stop, cron): nothing to do in a process without one."""

    def _on_reconnect(self) -> None:
        """The LISTEN connection was re-established: hints may have been missed meanwhile, a
        `services` hint among them (the first connection is followed by `start`'s own read)."""
        if self._started:
            self.background(self.load_overrides(), "reading service settings", "read again at the next housekeeping")

    async def _housekeeping_loop(self) -> None:
        """Re-read operators' settings (in case a "services" hint was missed), give back the
        connections idle write lanes keep, and whatever else the process keeps tidy (`_housekeep`)."""
        while True:
            await asyncio.sleep(self.retention_interval)
            try:
                await self.store.release_idle_connections()
                await self.load_overrides()
                await self._housekeep()
                self.failures.succeeded("housekeeping")
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.failures.failed("housekeeping", exc, "retrying later")

    async def _housekeep(self) -> None:
        """A worker forgets completed invocations past their retention (see the worker)."""
