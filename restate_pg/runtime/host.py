"""What an attempt needs from the process it runs in (implemented by the worker)."""

from __future__ import annotations

import typing

from restate_pg.api.app import App
from restate_pg.runtime.clock import DbClock
from restate_pg.store.driver import Store
from restate_pg.store.records import Batch, FlushResult, Lease, Submission


class Host(typing.Protocol):
    store: Store
    app: App
    clock: DbClock
    worker_id: str
    poll_interval: float
    default_inactivity_timeout: float

    def reserve_local(self, sub: Submission) -> bool:
        """Claim a slot to run `sub` in this process right after it is committed."""

    def after_flush(self, batch: Batch, result: FlushResult, lease: Lease) -> None:
        """Act on a committed flush: start local work, wake other processes, release slots."""
