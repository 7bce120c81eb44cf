"""A caller waiting for a result (services/results.py): told it directly, woken by a hint to read
it, or finding it by its poll when the word never comes; no future left behind either way.
The waits settle their own futures at the poll's deadline (core/wakeups.py)."""

from __future__ import annotations

import asyncio
import typing

from restate_pg.core.records import Batch, Complete
from restate_pg.services.outcomes import InvocationResult
from restate_pg.services.results import Results, ResultWaiters
from restate_pg.store.driver import Store
from tests.test_transitions import W1, claim_one, store, sub  # noqa: F401  (store: a fixture)

#: Bound on a wait that must end at once (a liveness bound, not a synchronisation).
LIVENESS_S = 30.0
FOREVER_S = 3600.0


class Waiting(typing.NamedTuple):
    invocation_id: str
    waiters: ResultWaiters
    task: "asyncio.Future[typing.Optional[InvocationResult]]"


async def waiting_caller(store: Store, poll_interval: float) -> Waiting:
    """A submitted invocation, and a caller in this process waiting for its result."""
    s = sub()
    await store.submit(s)
    waiters = ResultWaiters()
    results = Results(store, waiters, W1, poll_interval=poll_interval)
    return Waiting(s.id, waiters, asyncio.ensure_future(results.wait(s.id, waiters.add(s.id))))


async def complete(store: Store, output: bytes) -> None:
    """Complete the claimable invocation, with no word to any waiter (as from another process)."""
    lease = (await claim_one(store)).lease
    await store.flush(lease, Batch(outcome=Complete(output, None, 60_000)))


async def test_the_poll_finds_a_result_whose_word_never_came(store: Store) -> None:
    caller = await waiting_caller(store, poll_interval=0.05)
    await complete(store, b"polled")
    assert await asyncio.wait_for(caller.task, LIVENESS_S) == InvocationResult(b"polled", None)
    assert caller.waiters._waiters == {}


async def test_a_hint_wakes_the_waiter_to_read_the_result(store: Store) -> None:
    caller = await waiting_caller(store, poll_interval=FOREVER_S)
    await complete(store, b"hinted")
    caller.waiters.notify(caller.invocation_id, None)
    assert await asyncio.wait_for(caller.task, LIVENESS_S) == InvocationResult(b"hinted", None)
    assert caller.waiters._waiters == {}


async def test_a_result_told_directly_needs_no_read(store: Store) -> None:
    caller = await waiting_caller(store, poll_interval=FOREVER_S)
    await complete(store, b"stored")
    caller.waiters.notify(caller.invocation_id, InvocationResult(b"told", None))
    assert await asyncio.wait_for(caller.task, LIVENESS_S) == InvocationResult(b"told", None)  # not the stored b"stored"
    assert caller.waiters._waiters == {}


async def test_a_cancelled_wait_leaves_no_future(store: Store) -> None:
    caller = await waiting_caller(store, poll_interval=0.01)
    await asyncio.wait([caller.task], timeout=0.1)  # polls (every 10 ms) while the invocation runs
    assert not caller.task.done()
    caller.task.cancel()
    await asyncio.gather(caller.task, return_exceptions=True)
    assert caller.waiters._waiters == {}
