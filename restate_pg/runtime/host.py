"""What an attempt needs from the process it runs in (implemented by the worker)."""

from __future__ import annotations

import typing

from restate_pg.api.app import App
from restate_pg.api.definitions import Handler
from restate_pg.api.retry import InvocationRetryPolicy
from restate_pg.runtime.clock import DbClock
from restate_pg.runtime.port import JournalStore
from restate_pg.core.records import Batch, FlushResult, Lease, Submission


class Host(typing.Protocol):
    app: App
    worker_id: str
    deployment_id: str
    poll_interval: float
    default_inactivity_timeout: float
    #: The retry policy of handlers and services that set none (Restate's `default-retry-policy`).
    default_retry_policy: typing.Optional[InvocationRetryPolicy]

    @property
    def store(self) -> JournalStore:
        """Storage, as far as an attempt needs it: the worker's PostgreSQL `Store`, or the
        in-memory one of `restate_pg.testing.memory` (read-only here, so either type fits)."""

    @property
    def clock(self) -> DbClock:
        """The database's clock (timers are set in its time)."""

    def handler(self, service: str, name: str) -> typing.Optional[Handler]:
        """A handler by name: of the application, or of a registered SDK endpoint (callable by
        name: `ctx.generic_call`)."""

    def setting(self, handler: Handler, name: str) -> typing.Any:
        """A timeout or retention of `handler`: an operator's override of its service's setting
        (admin `PATCH /services/{name}`), else the handler's own, else its service's."""

    def reserve_local(self, sub: Submission) -> bool:
        """Claim a slot to run `sub` in this process right after it is committed; when it can,
        it sets the submission's owner (this worker) and the deployment that pins it."""

    def attempt_waiting(self, waiting: bool) -> bool:
        """The attempt starts (True) or stops (False) waiting in memory for a timer or a result.

        While it waits it does not count against the process's concurrency. Starting to wait
        returns False, and counts nothing, when the process keeps too many waiters in memory
        already: the attempt should suspend at once instead."""

    def background(self, coro: typing.Awaitable[typing.Any], kind: str, consequence: str = "") -> None:
        """Run `coro` without waiting for it; its failure is logged as a failure of `kind`,
        followed by `consequence` (what covers for it)."""

    def after_flush(self, batch: Batch, result: FlushResult, lease: Lease) -> None:
        """Act on a committed flush: start local work, wake other processes, release slots."""
