"""Starting invocations from outside a handler: send (fire and forget) and call (wait for the result).

Every transport submits through here: the ingress, the SQL client, the test harness. When the
process runs a worker that hosts the handler and has a free slot, the invocation is leased to it
with the submission and starts right here, without a claim round trip; and when the caller waits
here too and nothing must be durable at once, even its row waits for the attempt's first flush.
Otherwise the submission is written for any worker, and workers are hinted.
"""

from __future__ import annotations

import asyncio
import typing
from datetime import timedelta

from restate_pg.core.records import Failure, Submission, Submitted
from restate_pg.runtime.clock import DbClock
from restate_pg.services.outcomes import Accepted, BacklogFull, InvocationResult, PreviouslyAccepted
from restate_pg.services.ports import LocalWorker
from restate_pg.services.results import Results
from restate_pg.services.signals import Signals
from restate_pg.store.driver import Store



class Submissions:
    """Submitting invocations, for every transport of one process."""

    def __init__(
        self,
        store: Store,
        results: Results,
        signals: Signals,
        clock: DbClock,
        local: typing.Optional[LocalWorker] = None,
    ) -> None:
        self.store = store
        self.results = results
        self.signals = signals
        self.clock = clock
        self.local = local

    async def submit(
        self, sub: Submission, *, wait: bool = False
    ) -> typing.Tuple[Submitted, typing.Optional["asyncio.Future[typing.Optional[InvocationResult]]"]]:
        """Submit an invocation; with `wait`, also return a future for its result."""
        waiter = None
        if wait:
            sub.waiter = self.results.process_id
            waiter = self.results.waiters.add(sub.id)
        local = self.local
        if local is not None and sub.delay_ms is None and local.reserve_local(sub):
            if wait and _deferrable(sub):
                # The caller waits on this process, which runs the invocation: its row is written
                # with the attempt's first flush, not in a transaction of its own. Until then
                # nothing of it is durable and the caller has no answer, as if the request were
                # still in flight.
                local.start_unrecorded(sub)
                return Submitted(sub.id, "invoked", True), waiter
        try:
            submitted = await self.store.submit(sub)
        except BaseException:
            if sub.owner is not None and local is not None:
                local.release_slot(sub.id)
            if waiter is not None:
                self.results.waiters.remove(sub.id, waiter)
            raise
        if submitted.db_now is not None:
            self.clock.sync(submitted.db_now)
        if submitted.status == "rejected":
            if waiter is not None:
                self.results.waiters.remove(sub.id, waiter)
            raise BacklogFull(sub.scope, sub.limit_key, f"{sub.service}/{sub.handler}")
        self.after_submit(sub, submitted)
        return submitted, waiter

    def after_submit(self, sub: Submission, submitted: Submitted) -> None:
        """Act on a committed submission (also one a handler made, see the worker's `after_flush`):
        start it here if it was leased to this process, else give its slot back and hint workers."""
        if submitted.leased:
            assert self.local is not None  # only this process's worker leases at submission
            self.local.start_submitted(sub, submitted.state)
        else:
            if sub.owner is not None and self.local is not None:
                self.local.release_slot(sub.id)
            if submitted.status in ("invoked", "scheduled"):
                self.signals.hint_work()

    async def send(self, sub: Submission) -> typing.Union[Accepted, PreviouslyAccepted]:
        """Submit without waiting: `Accepted` (with its execution time when delayed), or
        `PreviouslyAccepted` when the idempotency key or workflow id was used before."""
        submitted, _ = await self.submit(sub)
        if submitted.status is None:
            return PreviouslyAccepted(sub.id)
        execution_time = None
        if submitted.status == "scheduled" and submitted.db_now is not None and sub.delay_ms is not None:
            # the same instant the submit statement stored as the start time: now() + delay
            execution_time = submitted.db_now + timedelta(milliseconds=sub.delay_ms)
        return Accepted(submitted.id, execution_time)  # a debounced send: the pending one it joined

    async def call(self, sub: Submission) -> typing.Tuple[Submitted, typing.Optional[InvocationResult]]:
        """Submit an invocation and wait for its result (None: it vanished, e.g. purged). A
        duplicate idempotency key attaches to the first submission; a workflow's run already
        started answers 409, as Restate's ingress does."""
        submitted, waiter = await self.submit(sub, wait=True)
        if submitted.status is None:
            if waiter is not None:
                self.results.waiters.remove(sub.id, waiter)
            if sub.handler_ty == "workflow":
                return submitted, InvocationResult(None, Failure(409, "the workflow method was already invoked"))
            waiter = None
        return submitted, await self.results.wait(sub.id, waiter)


def _deferrable(sub: Submission) -> bool:
    """Creation can wait for the first flush unless something must be durable at once."""
    return sub.idempotency_key is None and not sub.exclusive and sub.handler_ty != "workflow"
