"""`Store`: restate-pg's one door to PostgreSQL, a facade over the store's parts by concern.

Each part is a class of its own module, running the statements of `queries.py` (and requests
of the server-side `apply()`) through one `Gateway`: the pool, the prepared statements, the
group committer, and the translation of psycopg's errors into `core.errors`. The store knows
nothing about handlers or replay. Each public method is one transaction.

    invocations.Invocations   submit, status and result, loading claimed invocations
    write_path.WritePath      an attempt's flush, awakeable resolutions (`apply()`, `codec`)
    workers.Workers           register, heartbeat, reap, claim, hints
    catalog.Catalog           deployments, services and their settings
    operators.Operators       the operator's verbs, and object keys' state
    cron.Crons                cron schedules and their firing
    browsing.Browsing         what the operator UI reads
    flow.FlowRules            flow-control rules and queue counts
"""

from __future__ import annotations

import os
import typing
from datetime import datetime

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg_pool import AsyncConnectionPool

from restate_pg.store.availability import RECONNECT_S, bounded
from restate_pg.store.browsing import Browsing
from restate_pg.store.catalog import SERVICE_SETTINGS, Catalog
from restate_pg.store.codec import flush_request, flush_result, submission_doc
from restate_pg.store.cron import CronFiring, Crons
from restate_pg.store.flow import FlowRules
from restate_pg.store.errors import translated
from restate_pg.store.faults import FaultPlan
from restate_pg.store.gateway import Gateway, StorePart
from restate_pg.store.group_commit import GroupCommitter
from restate_pg.store.invocations import Invocations
from restate_pg.store.operators import Operators, state_version
from restate_pg.store.queries import Queries
from restate_pg.store.workers import Workers
from restate_pg.store.write_path import WritePath

__all__ = [
    "SERVICE_SETTINGS",
    "CronFiring",
    "Store",
    "flush_request",
    "flush_result",
    "state_version",
    "submission_doc",
]


def _named(conninfo: str, application_name: str) -> str:
    """`conninfo` with an application name, unless it or `PGAPPNAME` has one (or it cannot be
    read: connecting will say what is wrong), so that operators can tell whose backend is whose."""
    try:
        if "application_name" in conninfo_to_dict(conninfo) or os.environ.get("PGAPPNAME"):
            return conninfo
        return make_conninfo(conninfo, application_name=application_name)
    except psycopg.ProgrammingError:
        return conninfo


class Store(Invocations, WritePath, Workers, Catalog, Operators, Crons, Browsing, FlowRules):
    """PostgreSQL access for one schema: every part's methods, on one pool."""

    def __init__(
        self,
        conninfo: str,
        schema: str = "restate",
        *,
        min_size: int = 2,
        max_size: int = 10,
        prepare: bool = True,
        faults: typing.Optional[FaultPlan] = None,
        application_name: str = "restate-pg",
    ) -> None:
        self.schema = schema
        #: Injected failures (fault-injection tests only); None in normal operation.
        self.faults = faults
        self.q = Queries(schema)
        self.conninfo = bounded(_named(conninfo, application_name))
        self.pool = AsyncConnectionPool(
            self.conninfo,
            min_size=min_size,
            max_size=max_size,
            reconnect_timeout=RECONNECT_S,  # then the next request tries at once (store/availability.py)
            open=False,
            kwargs={"autocommit": True, "prepare_threshold": 0 if prepare else None},
            name="restate-pg",
        )
        StorePart.__init__(self, Gateway(self.pool, self.q, self.conninfo, faults))

    @property
    def _committer(self) -> GroupCommitter:
        """The group committer of `apply()` requests (tests count its transactions)."""
        return self._db.committer

    def observe_clock(self, observe: typing.Callable[[datetime, float], None]) -> None:
        """Tell `observe(db_now, sent_at)` of every `apply()` transaction (`GroupCommitter.observe_clock`)."""
        self._db.committer.observe_clock(observe)

    async def open(self) -> None:
        with translated():
            await self.pool.open(wait=True, timeout=10)

    async def release_idle_connections(self) -> None:
        """Give back to the pool the connections that idle group-commit lanes keep (housekeeping)."""
        await self._db.committer.release(idle_only=True)

    async def check_health(self) -> None:
        """Raise `StoreUnavailable` unless the database answers within a second (`/health`)."""
        await self._db.check_health()

    async def close(self) -> None:
        await self._db.close()
