"""A caller waiting for a result (services/results.py): told it directly, woken by a hint to read
it, or finding it by its poll when the word never comes; no future left behind either way.
The waits settle their own futures at the poll's deadline (core/wakeups.py)."""

from __future__ import annotations

import asyncio

from restate_pg.core.records import Batch, Complete
from restate_pg.services.outcomes import InvocationResult
from restate_pg.services.results import Results, ResultWaiters
from restate_pg.store.driver import Store
from tests.test_transitions import W1, claim_one, store, sub  # noqa: F401  (store: a fixture)

#: Bound on a wait that must end at once (a liveness bound, not a synchronisation).
LIVENESS_S = 30.0
FOREVER_S = 3600.0


async def completed_elsewhere(store: Store, output: bytes) -> str:
    """An invocation completed by a flush this process's waiters hear nothing of."""
    s = sub()
    await store.submit(s)
    lease = (await claim_one(store)).lease
    await store.flush(lease, Batch(outcome=Complete(output, None, 60_000)))
    return s.id


async def test_the_poll_finds_a_result_whose_word_never_came(store: Store) -> None:
    s = sub()
    await store.submit(s)
    waiters = ResultWaiters()
    results = Results(store, waiters, W1, poll_interval=0.05)
    waiting = asyncio.ensure_future(results.wait(s.id, waiters.add(s.id)))
    lease = (await claim_one(store)).lease
    await store.flush(lease, Batch(outcome=Complete(b"polled", None, 60_000)))
    assert await asyncio.wait_for(waiting, LIVENESS_S) == InvocationResult(b"polled", None)
    assert waiters._waiters == {}


async def test_a_hint_wakes_the_waiter_to_read_the_result(store: Store) -> None:
    s = sub()
    await store.submit(s)
    waiters = ResultWaiters()
    results = Results(store, waiters, W1, poll_interval=FOREVER_S)
    waiting = asyncio.ensure_future(results.wait(s.id, waiters.add(s.id)))
    lease = (await claim_one(store)).lease
    await store.flush(lease, Batch(outcome=Complete(b"hinted", None, 60_000)))
    waiters.notify(s.id, None)
    assert await asyncio.wait_for(waiting, LIVENESS_S) == InvocationResult(b"hinted", None)
    assert waiters._waiters == {}


async def test_a_result_told_directly_needs_no_read(store: Store) -> None:
    invocation_id = await completed_elsewhere(store, b"stored")
    waiters = ResultWaiters()
    results = Results(store, waiters, W1, poll_interval=FOREVER_S)
    waiter = waiters.add(invocation_id)
    waiting = asyncio.ensure_future(results.wait(invocation_id, waiter))
    waiters.notify(invocation_id, InvocationResult(b"told", None))
    assert await asyncio.wait_for(waiting, LIVENESS_S) == InvocationResult(b"told", None)  # not the stored b"stored"
    assert waiters._waiters == {}


async def test_a_cancelled_wait_leaves_no_future(store: Store) -> None:
    s = sub()
    await store.submit(s)
    waiters = ResultWaiters()
    results = Results(store, waiters, W1, poll_interval=0.01)
    waiting = asyncio.ensure_future(results.wait(s.id, waiters.add(s.id)))
    await asyncio.wait([waiting], timeout=0.1)  # polls (every 10 ms) while the invocation runs
    assert not waiting.done()
    waiting.cancel()
    await asyncio.gather(waiting, return_exceptions=True)
    assert waiters._waiters == {}
