"""Submissions that lock nothing commit beside the group in flight (store/group_commit.py, "a lane
of their own"): a send is answered while the flushes ahead of it still wait, and a submission
that takes an object key still queues behind them.

The group in flight is held on a real lock: a transaction left open holds the task row of the
attempt whose flush the group carries, so the group's fence waits for it (shown in pg_locks)."""

from __future__ import annotations

import asyncio

import psycopg
import pytest

from restate_pg.core.records import Batch, JournalRow
from restate_pg.store.driver import Store
from restate_pg.store.group_commit import commits_beside
from restate_pg.store.codec import submission_doc
from tests.support.polling import eventually
from tests.support.transactions import OpenTransaction
from tests.test_transitions import claim_one, status, store, sub  # noqa: F401  (store: a fixture)

#: Bound on a wait that must end at once (a liveness bound, not a synchronisation).
LIVENESS_S = 30.0


class TaskRowHeld(OpenTransaction):
    """A transaction holding one invocation's task row FOR UPDATE: its attempt's fence waits."""

    def __init__(self, url: str, invocation_id: str) -> None:
        super().__init__(url)
        self.invocation_id = invocation_id

    async def begin(self, conn: psycopg.AsyncConnection) -> None:
        await conn.execute("SELECT 1 FROM restate.task WHERE invocation_id = %s FOR UPDATE", (self.invocation_id,))


async def lock_waiters(url: str) -> int:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        cur = await conn.execute("SELECT count(*) FROM pg_locks WHERE NOT granted")
        return (await cur.fetchone())[0]


async def test_a_send_commits_while_the_group_ahead_of_it_waits(store: Store, clean_db: str) -> None:
    running = sub()
    await store.submit(running)
    lease = (await claim_one(store)).lease
    async with TaskRowHeld(clean_db, running.id) as holder:
        flushing = asyncio.ensure_future(store.flush(lease, Batch(journal=[JournalRow(1, 1, None, "Run", name="step")])))
        await eventually(lambda: lock_waiters(clean_db), 1, what="the group's fence waiting for the task row")

        keyed = asyncio.ensure_future(store.submit(sub("Obj", "k")))  # takes a key: queues behind the group
        send, shared_call = sub(), sub("Obj", "k", exclusive=False)
        assert (await asyncio.wait_for(store.submit(send), LIVENESS_S)).status == "invoked"
        assert (await asyncio.wait_for(store.submit(shared_call), LIVENESS_S)).status == "invoked"
        assert await status(store, send.id) == "invoked"  # committed: another connection sees it
        assert not flushing.done() and not keyed.done()

        await holder.commit()
        await asyncio.wait_for(flushing, LIVENESS_S)
        assert (await asyncio.wait_for(keyed, LIVENESS_S)).status == "invoked"
    assert len((await store.load([running.id]))[running.id].journal) == 1


@pytest.mark.parametrize("changes, beside", [
    ({}, True),  # a service's send
    ({"key": "k", "handler_ty": "shared"}, True),
    ({"key": "k", "handler_ty": "exclusive"}, False),  # takes the object key
    ({"key": "wf", "handler_ty": "workflow"}, False),  # one run per workflow id
    ({"idempotency_key": "once"}, False),
    ({"debounce_key": "d", "delay_ms": 100}, False),
    ({"scope": "tenant"}, False),  # a flow scope: its rules' locks
])
def test_which_submissions_commit_beside(changes: dict, beside: bool) -> None:
    doc = {**submission_doc(sub()), **changes}
    assert commits_beside({"submit": doc}) is beside
    assert not commits_beside({"flush": {"id": "inv_1"}})
