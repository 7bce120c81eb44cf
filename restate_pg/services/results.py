"""Waiting for invocations' results: the callers' futures, and how they learn of a completion.

A caller that waits in this process registers a future. The attempt that completes the
invocation resolves it directly when it runs here; a worker elsewhere NOTIFYs this process a
`done` hint (the invocation's `waiter` column names it), which wakes the future to read the result;
and a poll every `poll_interval` covers a lost notification.
"""

from __future__ import annotations

import asyncio
import typing
from datetime import datetime

from restate_pg.core.wakeups import settle_later
from restate_pg.services.outcomes import Finished, InvocationResult, Missing, NotReady
from restate_pg.services.ports import LocalWorker
from restate_pg.store.driver import Store



class ResultWaiters:
    """The futures of callers waiting in this process, by invocation id. A future gets the result,
    or None when only a hint came (the waiter then reads the result from the database)."""

    def __init__(self) -> None:
        self._waiters: typing.Dict[str, typing.List["asyncio.Future[typing.Optional[InvocationResult]]"]] = {}
        self._loop: typing.Optional[asyncio.AbstractEventLoop] = None

    def add(self, invocation_id: str) -> "asyncio.Future[typing.Optional[InvocationResult]]":
        loop = self._loop
        if loop is None or loop.is_closed():  # asked once: on Python 3.11 each ask is a getpid()
            loop = self._loop = asyncio.get_running_loop()
        future: "asyncio.Future[typing.Optional[InvocationResult]]" = loop.create_future()
        self._waiters.setdefault(invocation_id, []).append(future)
        return future

    def remove(self, invocation_id: str, future: "asyncio.Future[typing.Any]") -> None:
        futures = self._waiters.get(invocation_id)
        if futures and future in futures:
            futures.remove(future)
            if not futures:
                del self._waiters[invocation_id]

    def notify(self, invocation_id: str, result: typing.Optional[InvocationResult]) -> None:
        """Wake every caller waiting for `invocation_id`: with its result, or None for "look"."""
        for future in self._waiters.get(invocation_id, []):
            if not future.done():
                future.set_result(result)


class Results:
    """Reading invocations' results: wait for one (`attach`), or take it if ready (`output`)."""

    def __init__(
        self,
        store: Store,
        waiters: ResultWaiters,
        process_id: str,
        poll_interval: float,
        local: typing.Optional[LocalWorker] = None,
    ) -> None:
        self.store = store
        self.waiters = waiters
        self.process_id = process_id
        self.poll_interval = poll_interval
        self.local = local

    def _unrecorded(self, invocation_id: str) -> bool:
        return self.local is not None and self.local.is_unrecorded(invocation_id)

    async def wait(
        self, invocation_id: str, waiter: typing.Optional["asyncio.Future[typing.Optional[InvocationResult]]"] = None
    ) -> typing.Optional[InvocationResult]:
        """Wait for an invocation's result; None if it does not exist. With `waiter`, the future
        registered when it was submitted (its `waiter` column names this process already)."""
        if waiter is None:
            waiter = self.waiters.add(invocation_id)
            row = await self.store.wait_for(invocation_id, self.process_id)
            if row is None:
                self.waiters.remove(invocation_id, waiter)
                return None
            if row["status"] == "completed":
                self.waiters.remove(invocation_id, waiter)
                return InvocationResult.from_row(row)
        try:
            while True:
                # the poll's deadline wakes the waiter as a hint would, with None (core/wakeups.py)
                deadline = settle_later(waiter, self.poll_interval)
                outcome = await waiter
                if deadline is not None:
                    deadline.cancel()
                if outcome is not None:
                    return outcome
                self.waiters.remove(invocation_id, waiter)  # spent: a fresh one before the read misses nothing
                waiter = self.waiters.add(invocation_id)
                row = await self.store.get_invocation(invocation_id)
                if row is None:
                    if self._unrecorded(invocation_id):
                        continue  # running here, not flushed yet
                    return None
                if row["status"] == "completed":
                    return InvocationResult.from_row(row)
        finally:
            self.waiters.remove(invocation_id, waiter)

    async def attach(self, invocation_id: str) -> typing.Union[Finished, Missing]:
        """Wait for an invocation's result (`/attach`)."""
        result = await self.wait(invocation_id)
        if result is None:
            return Missing()
        return _finished(result, await self.store.get_invocation(invocation_id))

    async def output(self, invocation_id: str) -> typing.Union[Finished, NotReady, Missing]:
        """An invocation's result if it has completed (`/output`), without waiting."""
        row = await self.store.get_invocation(invocation_id)
        if row is None:
            return NotReady() if self._unrecorded(invocation_id) else Missing()
        if row["status"] != "completed":
            return NotReady()
        return _finished(InvocationResult.from_row(row), row)

    async def retained_until(self, invocation_id: str) -> typing.Optional[datetime]:
        """Until when a completed invocation's result is kept (the `idempotency-expires` header)."""
        row = await self.store.get_invocation(invocation_id)
        return None if row is None else row.get("retain_until")


def _finished(result: InvocationResult, row: typing.Optional[typing.Mapping[str, typing.Any]]) -> Finished:
    if row is None:  # purged between the result and this read
        return Finished(result)
    return Finished(result, row["service"], row["handler"], row.get("retain_until"))
