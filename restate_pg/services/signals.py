"""How a process tells the others (and itself) that something happened.

Every signal is a hint: NOTIFY on the shared work channel ("there is work"), or on one process's
own channel ("this invocation's mailbox has news", "stop this attempt", "its result is ready").
When the addressee is this very process, the signal is delivered in memory instead. A lost hint
costs latency, never correctness: every receiver also polls.
"""

from __future__ import annotations

import typing

from restate_pg.core import hints
from restate_pg.core.hints import process_channel, work_channel
from restate_pg.services.outcomes import InvocationResult
from restate_pg.services.ports import LocalWorker
from restate_pg.services.results import ResultWaiters
from restate_pg.store.driver import Store

#: Runs a coroutine without waiting for it; a failure is logged as one of `kind`, followed by
#: `consequence` (what covers for it). The process's, see `Gateway.background`.
Background = typing.Callable[[typing.Awaitable[typing.Any], str, str], None]


class Signals:
    """The hints of one process: to workers, to the process running an invocation, to the
    process waiting for a result."""

    def __init__(
        self,
        store: Store,
        process_id: str,
        waiters: ResultWaiters,
        background: Background,
        local: typing.Optional[LocalWorker] = None,
    ) -> None:
        self.store = store
        self.process_id = process_id
        self.waiters = waiters
        self.background = background
        self.local = local
        self.work_channel = work_channel(store.schema)
        self._hint_running = False
        self._hint_again = False

    def hint_work(self) -> None:
        """Tell workers there is new work: at most one NOTIFY in flight per process."""
        if self._hint_running:
            self._hint_again = True
            return
        self._hint_running = True
        self.background(self._send_hints(), "notify", "workers find the work by polling")

    async def _send_hints(self) -> None:
        try:
            while True:
                self._hint_again = False
                await self.store.notify(self.work_channel, hints.WORK)
                if not self._hint_again:
                    return
        finally:
            self._hint_running = False

    def _channel(self, process_id: str) -> str:
        return process_channel(self.store.schema, process_id)

    def wake(self, invocation_id: str, owner: typing.Optional[str]) -> None:
        """Tell whoever runs `invocation_id` that its mailbox has news; with no owner, it was
        suspended and is ready now, so tell the workers there is work."""
        if owner is None:
            self.hint_work()
        elif owner == self.process_id:
            if self.local is not None:
                self.local.wake_attempt(invocation_id)
        else:
            self.background(self.store.notify(self._channel(owner), hints.wake(invocation_id)),
                            "notify", "the woken invocation finds its mailbox by polling")

    def tell_waiter(self, invocation_id: str, waiter: typing.Optional[str], result: InvocationResult) -> None:
        """An invocation completed: tell the process waiting for its result (`invocation.waiter`;
        "*" for a waiter that may be anywhere)."""
        if waiter == self.process_id:
            self.waiters.notify(invocation_id, result)
        elif waiter is not None:
            channel = self.work_channel if waiter == "*" else self._channel(waiter)
            self.background(self.store.notify(channel, hints.done(invocation_id)), "notify", "the caller finds the result by polling")
            if waiter == "*":
                self.waiters.notify(invocation_id, None)

    def stop_attempt(self, invocation_id: str, owner: str, epoch: typing.Optional[int] = None) -> None:
        """End the attempt `owner` runs of an invocation whose lease was taken away: the one at
        `epoch` (a later one, started after a resume, keeps running), or any when None."""
        if owner == self.process_id:
            if self.local is not None:
                self.local.stop_attempt(invocation_id, epoch)
        else:
            self.background(self.store.notify(self._channel(owner), hints.stop(invocation_id, epoch)),
                            "notify", "the attempt's next write is refused by the fence")
