"""A completion releasing an object key against a submission to the same key (revision 0019,
`release_object_key`): the submission holds the key's lock from deciding "inbox or take it" to
its commit; the completion takes that lock only to free the key.

- Handing the key to the head of a non-empty inbox does not wait for the submission: the head is
  committed already, and the submission appends at the tail, seeing the key held either way.
- Freeing the key (the inbox looks empty) waits for the submission, then looks again and hands the
  key to the invocation that joined the inbox meanwhile: none is left behind with the key free.

Each race is played step by step on real connections: the submission's transaction is held open,
and the completion is shown waiting (pg_locks) or finished while it is.
"""

from __future__ import annotations

import asyncio
import typing

import psycopg

from restate_pg.core.records import Batch, Complete, Lease
from restate_pg.store.codec import encode_requests, flush_request, submission_doc
from restate_pg.store.driver import Store
from tests.support.polling import eventually
from tests.support.transactions import OpenTransaction
from tests.test_fence_races import blocked, started
from tests.test_transitions import claim_one, status, store, sub  # noqa: F401  (store: a fixture)

KEY = ("Obj", "k")
#: Bound on a wait that must end at once (a liveness bound, not a synchronisation).
LIVENESS_S = 30.0


class OpenSubmission(OpenTransaction):
    """A submission to KEY, applied in a transaction left open: it holds the key's lock."""

    def __init__(self, store: Store, url: str) -> None:
        super().__init__(url)
        self.store = store
        self.sub = sub(*KEY)

    async def begin(self, conn: psycopg.AsyncConnection) -> None:
        await conn.execute("SELECT restate.apply(%s::jsonb)", (encode_requests([{"submit": submission_doc(self.sub)}]),))


def completion(lease: Lease) -> typing.Callable[[psycopg.AsyncConnection], typing.Awaitable[typing.Any]]:
    """The holder's completion, releasing KEY, as the group committer sends it."""
    request = {"flush": flush_request(lease, Batch(outcome=Complete(b"1", None, 1000, release_key=KEY)))}
    return lambda conn: conn.execute("SELECT restate.apply(%s::jsonb)", (encode_requests([request]),))


async def key_holder(store: Store) -> typing.Optional[str]:
    async with store.pool.connection() as conn:
        row = await (await conn.execute("SELECT invocation_id FROM restate.object_lock WHERE service = %s AND key = %s",
                                        KEY)).fetchone()
    return row[0] if row else None


async def inbox(store: Store) -> typing.List[str]:
    async with store.pool.connection() as conn:
        cur = await conn.execute("SELECT invocation_id FROM restate.inbox ORDER BY seq")
        return [row[0] for row in await cur.fetchall()]


async def test_handing_the_key_to_the_inbox_head_does_not_wait_for_a_submission_holding_its_lock(store, clean_db):
    holder, head = sub(*KEY), sub(*KEY)
    await store.submit(holder)
    assert (await store.submit(head)).status == "inboxed"
    lease = (await claim_one(store)).lease
    async with OpenSubmission(store, clean_db) as late:
        completing, _ = await started(clean_db, completion(lease))
        # it finishes while the submission holds the key's lock (before revision 0019 it waited for
        # it, here for ever: the bound only turns that hang into a failure)
        await asyncio.wait_for(completing, LIVENESS_S)
        assert await key_holder(store) == head.id
        assert await status(store, holder.id) == "completed"
        await late.commit()
    assert await inbox(store) == [late.sub.id]  # behind the new holder
    assert await status(store, late.sub.id) == "inboxed"


async def test_freeing_the_key_waits_for_a_submission_joining_the_inbox_then_hands_the_key_to_it(store, clean_db):
    holder = sub(*KEY)
    await store.submit(holder)
    lease = (await claim_one(store)).lease
    async with OpenSubmission(store, clean_db) as joining:
        completing, pid = await started(clean_db, completion(lease))
        await eventually(lambda: blocked(clean_db, pid), what="the completion waiting for the key's lock")
        assert not completing.done()
        await joining.commit()
        await completing
    assert await key_holder(store) == joining.sub.id  # not left in the inbox with the key free
    assert await inbox(store) == []
    assert await status(store, joining.sub.id) == "invoked"
    assert (await claim_one(store)).lease.invocation_id == joining.sub.id


async def test_freeing_the_key_with_no_submission_about_leaves_it_free(store, clean_db):
    holder = sub(*KEY)
    await store.submit(holder)
    lease = (await claim_one(store)).lease
    completing, _ = await started(clean_db, completion(lease))
    await completing
    assert await key_holder(store) is None
    assert (await store.submit(sub(*KEY))).status == "invoked"
