"""The fence against every statement that takes a lease away (docs/invocation-lifecycle.md,
"Fencing"): an attempt's transaction holds its task row FOR SHARE from its fence to its commit,
and a takeover (pause, kill, a clean unregister) waits for it and then sees its writes, a reap
skips it until the next round, and the stale attempt can write nothing after. And the fence
finds the row by its key whatever the session planned (revision 0017), as does the fence of a
group's journal-only flushes (revision 0019).

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
from restate_pg.store.codec import encode_requests, flush_request
from restate_pg.store.driver import Store
from restate_pg.store.group_commit import APPLY_STATEMENT
from restate_pg.store.prepared_call import PreparedCall
from tests.support.polling import eventually
from tests.support.transactions import OpenTransaction
from tests.test_transitions import W1, W2, claim_one, store, sub, task_row  # noqa: F401  (store: a fixture)


async def blocked(url: str, pid: int) -> bool:
    """Whether backend `pid` waits for a lock."""
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        cur = await conn.execute("SELECT count(*) FROM pg_locks WHERE pid = %s AND NOT granted", (pid,))
        return (await cur.fetchone())[0] > 0


class FencedTransaction(OpenTransaction):
    """An attempt's transaction, open after its fence and one journal row."""

    def __init__(self, url: str, invocation_id: str, epoch: int) -> None:
        super().__init__(url)
        self.invocation_id, self.epoch = invocation_id, epoch

    async def begin(self, conn: psycopg.AsyncConnection) -> None:
        await conn.execute("SELECT restate.fence(%s, %s, %s)", (self.invocation_id, W1, self.epoch))
        await conn.execute(
            "INSERT INTO restate.journal (invocation_id, index, command_index, entry_type, name, completed)"
            " VALUES (%s, 1, 1, 'Run', 'written under the fence', true)", (self.invocation_id,))


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


async def index_scans(store: Store) -> typing.Dict[str, int]:
    async with store.pool.connection() as conn:
        cur = await conn.execute("SELECT indexrelname, idx_scan FROM pg_stat_user_indexes"
                                 " WHERE schemaname = 'restate' AND relname = 'task'")
        return dict(await cur.fetchall())


async def test_the_fence_finds_the_row_by_its_key_in_a_session_planned_on_an_empty_table(store, clean_db):
    """The session plans the fence on the empty table (its first calls fail: no such task); with
    the lease in the WHERE clause its cached plan then scanned the `task_owner` index, every task
    of the worker, for each later call."""
    async with await psycopg.AsyncConnection.connect(clean_db, autocommit=True) as session:
        for n in range(10):  # past plpgsql's five custom plans: its generic plan is cached now
            with pytest.raises(psycopg.DatabaseError, match="lost its lease"):
                await session.execute("SELECT restate.fence(%s, %s, 1)", (f"inv_missing{n}", W1))
        async with store.pool.connection() as conn:
            await conn.execute("INSERT INTO restate.task (invocation_id, service, status, run_at, lease_owner, epoch)"
                               " SELECT 'inv_' || g, 'Svc', 'running', now(), %s, 1 FROM generate_series(1, 500) g", (W1,))
        before = await eventually(lambda: index_scans(store))
        for n in range(1, 21):
            await session.execute("SELECT restate.fence(%s, %s, 1)", (f"inv_{n}", W1))
    after = await eventually(lambda: _changed(store, before))
    assert after["task_owner"] == before["task_owner"]
    assert after["task_pkey"] >= before["task_pkey"] + 20


async def _changed(store: Store, before: typing.Dict[str, int]) -> typing.Optional[typing.Dict[str, int]]:
    """The index counters once the session's statistics reached them (they are sent when it is idle)."""
    now = await index_scans(store)
    return now if now != before else None


def journal_only(invocation_id: str, epoch: int, index: int) -> typing.Dict[str, typing.Any]:
    """A request of apply() that only appends a step's entry: the group's set-based path."""
    lease = Lease(invocation_id, W1, epoch, 1)
    return {"flush": flush_request(lease, Batch(journal=[JournalRow(index, index, None, "Run", name=f"step {index}")]))}


async def test_a_groups_journal_only_flushes_find_their_rows_by_key_in_a_session_planned_without_statistics(store, clean_db):
    """apply() fences all of a group's journal-only flushes in one statement (revision 0019): with
    no statistics on `task` (autovacuum off, or a fresh table), its plan must still look each
    row up by its key, not scan every lease of the worker (`task_owner`) for each flush."""
    async with store.pool.connection() as conn:
        await conn.execute("INSERT INTO restate.task (invocation_id, service, status, run_at, lease_owner, epoch)"
                           " SELECT 'inv_' || g, 'Svc', 'running', now(), %s, 1 FROM generate_series(1, 500) g", (W1,))
    before = await eventually(lambda: index_scans(store))
    async with await psycopg.AsyncConnection.connect(clean_db, autocommit=True) as session:
        for n in range(10):  # past plpgsql's five custom plans: its generic plan is cached from the sixth
            group = [journal_only(f"inv_{10 * n + k}", 1, 1) for k in range(1, 11)]
            await PreparedCall(APPLY_STATEMENT, store.q.APPLY).row(session, encode_requests(group).encode())
    after = await eventually(lambda: _changed(store, before))
    assert after["task_owner"] == before["task_owner"]
    assert after["task_pkey"] >= before["task_pkey"] + 100
    async with store.pool.connection() as conn:
        cur = await conn.execute("SELECT count(*) FROM restate.journal")
        assert (await cur.fetchone())[0] == 100


async def test_a_group_with_one_lost_lease_among_its_journal_only_flushes_appends_none_of_them(store, clean_db):
    held, epoch = await leased(store)
    lost, lost_epoch = await leased(store)
    async with store.pool.connection() as conn:
        await conn.execute(store.q.PAUSE_INVOCATION, {"id": lost})  # its lease taken away
    async with await psycopg.AsyncConnection.connect(clean_db, autocommit=True) as session:
        group = [journal_only(held, epoch, 1), journal_only(lost, lost_epoch, 1)]
        with pytest.raises(psycopg.DatabaseError, match=f"attempt {lost_epoch} of invocation {lost} lost its lease"):
            await PreparedCall(APPLY_STATEMENT, store.q.APPLY).row(session, encode_requests(group).encode())
    assert await journal_names(store, held) == [] and await journal_names(store, lost) == []
    await store.flush(claimed_lease(held, epoch), Batch(journal=[JournalRow(1, 1, None, "Run", name="alone")]))
    assert await journal_names(store, held) == ["alone"]
