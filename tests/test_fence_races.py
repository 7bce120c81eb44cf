"""The fence against every statement that takes a lease away (docs/invocation-lifecycle.md,
"Fencing"; revision 0017): an attempt's transaction holds its task row FOR KEY SHARE from its
fence to its commit, and a takeover (pause, kill, a clean unregister) waits for it and then sees
its writes, a reap skips it until the next round, and the stale attempt can write nothing after;
a mailbox delivery, which takes no lease, does not wait.

Each race is played step by step on real connections: the attempt's transaction is held open
after its fence and a write, and the test waits until PostgreSQL shows the other statement
waiting for it (pg_locks), or finished without waiting, so the interleaving is the one named.
"""

from __future__ import annotations

import asyncio
import typing

import psycopg
import pytest

from restate_pg.core.errors import Fenced
from restate_pg.core.records import Batch, JournalRow, Lease
from restate_pg.store.driver import Store
from tests.support.polling import eventually
from tests.test_transitions import W1, W2, claim_one, store, sub, task_row  # noqa: F401  (store: a fixture)


async def blocked(url: str, pid: int) -> bool:
    """Whether backend `pid` waits for a lock."""
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        cur = await conn.execute("SELECT count(*) FROM pg_locks WHERE pid = %s AND NOT granted", (pid,))
        return (await cur.fetchone())[0] > 0


class FencedTransaction:
    """An attempt's transaction, open after its fence and one journal row."""

    def __init__(self, url: str, invocation_id: str, epoch: int) -> None:
        self.url, self.invocation_id, self.epoch = url, invocation_id, epoch
        self.conn: typing.Optional[psycopg.AsyncConnection] = None

    async def __aenter__(self) -> "FencedTransaction":
        self.conn = await psycopg.AsyncConnection.connect(self.url)
        await self.conn.execute("SELECT restate.fence(%s, %s, %s)", (self.invocation_id, W1, self.epoch))
        await self.conn.execute(
            "INSERT INTO restate.journal (invocation_id, index, command_index, entry_type, name, completed)"
            " VALUES (%s, 1, 1, 'Run', 'written under the fence', true)", (self.invocation_id,))
        return self

    async def commit(self) -> None:
        assert self.conn is not None
        await self.conn.commit()

    async def __aexit__(self, *exc: object) -> None:
        assert self.conn is not None
        await self.conn.close()


async def started(url: str, statement: typing.Callable[[psycopg.AsyncConnection], typing.Awaitable[typing.Any]]):
    """Run `statement` on a connection of its own in the background: the task and its backend's pid."""
    conn = await psycopg.AsyncConnection.connect(url, autocommit=True)
    pid = conn.info.backend_pid

    async def run() -> typing.Any:
        try:
            return await statement(conn)
        finally:
            await conn.close()

    return asyncio.ensure_future(run()), pid


def claimed_lease(invocation_id: str, epoch: int) -> Lease:
    return Lease(invocation_id, W1, epoch, 1)


async def leased(store: Store) -> typing.Tuple[str, int]:
    s = sub()
    await store.submit(s)
    claimed = await claim_one(store, W1)
    return s.id, claimed.lease.epoch


async def journal_names(store: Store, invocation_id: str) -> typing.List[str]:
    async with store.pool.connection() as conn:
        cur = await conn.execute("SELECT name FROM restate.journal WHERE invocation_id = %s ORDER BY index", (invocation_id,))
        return [row[0] for row in await cur.fetchall()]


@pytest.mark.parametrize("takeover", ["pause", "kill", "unregister"])
async def test_a_takeover_waits_for_the_fenced_transaction_then_sees_its_writes(store, clean_db, takeover):
    invocation_id, epoch = await leased(store)
    statements = {
        "pause": lambda conn: conn.execute(store.q.PAUSE_INVOCATION, {"id": invocation_id}),
        "kill": lambda conn: conn.execute("SELECT restate.kill_invocation(%s)", (invocation_id,)),
        "unregister": lambda conn: conn.execute(store.q.UNREGISTER_WORKER, {"id": W1}),
    }
    async with FencedTransaction(clean_db, invocation_id, epoch) as attempt:
        taking, pid = await started(clean_db, statements[takeover])
        await eventually(lambda: blocked(clean_db, pid))
        assert not taking.done()
        await attempt.commit()
        await taking
    assert await journal_names(store, invocation_id) == ["written under the fence"]
    row = await task_row(store, invocation_id)
    assert row is None if takeover == "kill" else row["lease_owner"] is None
    with pytest.raises(Fenced):  # the attempt's next write is refused
        await store.flush(claimed_lease(invocation_id, epoch), Batch(journal=[JournalRow(2, 2, None, "Run", name="late")]))
    assert await journal_names(store, invocation_id) == ["written under the fence"]


async def test_a_reap_skips_a_task_under_a_fenced_transaction_until_it_commits(store, clean_db):
    invocation_id, epoch = await leased(store)
    async with store.pool.connection() as conn:
        await conn.execute("DELETE FROM restate.worker WHERE id = %s", (W1,))  # W1 declared dead, yet still writing
    async with FencedTransaction(clean_db, invocation_id, epoch) as attempt:
        assert await store.reap(60_000) == []  # never waits for it: skipped this round
        await attempt.commit()
    assert await store.reap(60_000) == [invocation_id]
    taken = await claim_one(store, W2)
    assert taken.lease.epoch == epoch + 1
    with pytest.raises(Fenced):
        await store.flush(claimed_lease(invocation_id, epoch), Batch(journal=[JournalRow(2, 2, None, "Run", name="late")]))
    assert await journal_names(store, invocation_id) == ["written under the fence"]


async def test_a_mailbox_delivery_does_not_wait_for_a_fenced_transaction(store, clean_db):
    invocation_id, epoch = await leased(store)
    async with FencedTransaction(clean_db, invocation_id, epoch) as attempt:
        delivering, pid = await started(clean_db, lambda conn: conn.execute(
            "SELECT restate.deliver_notification(%s, 7, ''::bytea, NULL, NULL, NULL)", (invocation_id,)))
        await asyncio.wait_for(delivering, 30)  # done while the attempt's transaction is still open
        await attempt.commit()
    row = await task_row(store, invocation_id)
    assert row["wakeups"] == 1 and row["lease_owner"] == W1

