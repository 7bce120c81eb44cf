"""Every state transition of docs/invocation-lifecycle.md, at the store level, with its failure paths."""

from __future__ import annotations

import asyncio
import typing

import pytest

from restate_pg.core.ids import new_invocation_id
from restate_pg.core.errors import Fenced
from restate_pg.store.driver import Store
from restate_pg.store.procedures import EAGER_STATE_LIMIT
from restate_pg.core.records import (
    Batch,
    Complete,
    Failure,
    JournalRow,
    Lease,
    Retry,
    StateOp,
    Submission,
    Suspend,
)
from tests.support.polling import eventually

W1, W2 = "worker-one", "worker-two"


@pytest.fixture
async def store(clean_db):
    store = Store(clean_db)
    await store.open()
    await store.register_worker(W1, "test", 1, ["Svc", "Obj"])
    await store.register_worker(W2, "test", 2, ["Svc", "Obj"])
    yield store
    await store.close()


def sub(service: str = "Svc", key: typing.Optional[str] = None, **kw: typing.Any) -> Submission:
    exclusive = key is not None and kw.pop("exclusive", True)
    return Submission(
        id=new_invocation_id(key), service=service, handler="h", key=key,
        service_ty="virtual_object" if key is not None else "service",
        handler_ty="exclusive" if exclusive else ("shared" if key is not None else None),
        input=b"{}", **kw,
    )


async def task_row(store: Store, invocation_id: str) -> typing.Optional[dict]:
    async with store.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT status, lease_owner, epoch, attempt, wakeups, run_at = 'infinity' AS never,"
            " run_at <= now() AS due FROM restate.task WHERE invocation_id = %s", (invocation_id,))
        row = await cur.fetchone()
    if row is None:
        return None
    return dict(zip(["status", "lease_owner", "epoch", "attempt", "wakeups", "never", "due"], row))


async def status(store: Store, invocation_id: str) -> str:
    return (await store.get_invocation(invocation_id))["status"]


async def claim_one(store: Store, owner: str = W1):
    claimed = await store.claim(owner, ["Svc", "Obj"], 10)
    assert len(claimed) == 1
    return claimed[0]


async def test_submit_ready_then_claim(store):
    s = sub()
    assert (await store.submit(s)).status == "invoked"
    assert (await task_row(store, s.id))["status"] == "ready"
    claimed = await claim_one(store)
    assert claimed.lease == Lease(s.id, W1, 1, 1)
    assert (await task_row(store, s.id))["status"] == "running"
    assert await store.claim(W2, ["Svc"], 10) == []  # leased: nobody else gets it


async def test_submit_leased_to_the_submitting_worker(store):
    s = sub(owner=W1)
    submitted = await store.submit(s)
    assert submitted.leased
    assert (await task_row(store, s.id))["lease_owner"] == W1
    assert await store.claim(W2, ["Svc"], 10) == []


async def test_duplicate_submission_is_refused(store):
    s = sub(idempotency_key="k")
    assert (await store.submit(s)).status == "invoked"
    assert (await store.submit(s)).status is None


async def test_delayed_submission_is_scheduled_until_due(store):
    s = sub(delay_ms=60_000)
    assert (await store.submit(s)).status == "scheduled"
    row = await task_row(store, s.id)
    assert row["status"] == "scheduled" and not row["due"]
    assert await store.claim(W1, ["Svc"], 10) == []


async def test_exclusive_submissions_queue_behind_the_key_holder(store):
    first, second = sub("Obj", "k"), sub("Obj", "k")
    assert (await store.submit(first)).status == "invoked"
    assert (await store.submit(second)).status == "inboxed"
    assert await task_row(store, second.id) is None
    assert await status(store, second.id) == "inboxed"
    # a shared handler of the same key does not queue
    shared = sub("Obj", "k", exclusive=False)
    assert (await store.submit(shared)).status == "invoked"


async def test_concurrent_exclusive_submissions_take_the_key_once(store):
    subs = [sub("Obj", "race") for _ in range(20)]
    results = await asyncio.gather(*(store.submit(s) for s in subs))
    assert sorted(r.status for r in results) == ["inboxed"] * 19 + ["invoked"]


async def test_completion_hands_the_key_to_the_inbox_head_in_order(store):
    subs = [sub("Obj", "k") for _ in range(3)]
    for s in subs:
        await store.submit(s)
    holder = subs[0].id
    for nxt in subs[1:]:
        lease = (await claim_one(store)).lease
        assert lease.invocation_id == holder
        result = await store.flush(lease, Batch(outcome=Complete(b"1", None, 1000, release_key=("Obj", "k"))))
        assert result.next_holder is not None and result.next_holder.id == nxt.id
        assert await status(store, holder) == "completed"
        assert await task_row(store, holder) is None
        assert await status(store, nxt.id) == "invoked"
        holder = nxt.id
    lease = (await claim_one(store)).lease
    result = await store.flush(lease, Batch(outcome=Complete(b"1", None, 1000, release_key=("Obj", "k"))))
    assert result.next_holder is None
    async with store.pool.connection() as conn:
        assert await (await conn.execute("SELECT count(*) FROM restate.object_lock")).fetchone() == (0,)
    assert (await store.submit(sub("Obj", "k"))).status == "invoked"  # the key is free again


async def test_release_can_lease_the_next_holder_to_the_releasing_worker(store):
    first, second = sub("Obj", "k"), sub("Obj", "k")
    await store.submit(first)
    await store.submit(second)
    lease = (await claim_one(store)).lease
    await store.flush(lease, Batch(outcome=Complete(b"", None, 1000, release_key=("Obj", "k"), take_next=True)))
    row = await task_row(store, second.id)
    assert row["status"] == "running" and row["lease_owner"] == W1 and row["epoch"] == 1


async def test_a_key_taken_by_its_submitter_comes_with_its_state_unless_too_big(store):
    first = sub("Obj", "k", owner=W1)
    assert (await store.submit(first)).state == {}
    lease = Lease(first.id, W1, 1, 1)
    big = b"x" * (EAGER_STATE_LIMIT + 1)
    await store.flush(lease, Batch(state=[("Obj", "k", StateOp("set", "a", b"1")), ("Obj", "k2", StateOp("set", "b", big))],
                                   outcome=Complete(b"", None, 1000, release_key=("Obj", "k"))))
    assert (await store.submit(sub("Obj", "k", owner=W1))).state == {"a": b"1"}
    assert (await store.submit(sub("Obj", "k2", owner=W1))).state is None  # read lazily instead
    assert (await store.submit(sub("Obj", "k3"))).state is None  # not leased here: nothing sent


async def test_a_due_delayed_call_takes_its_free_key_or_queues_before_any_claim(store):
    """A claim first starts due delayed invocations as calls would: one of an exclusive handler
    takes its key if it is free and is then claimed; else it goes to the key's inbox, unclaimed."""
    holder = sub("Obj", "k")
    await store.submit(holder)
    delayed = sub("Obj", "k", delay_ms=0)
    assert (await store.submit(delayed)).status == "scheduled"
    free = sub("Obj", "other", delay_ms=0)
    await store.submit(free)
    claimed = {c.lease.invocation_id: c for c in await store.claim(W1, ["Obj"], 10)}
    assert sorted(claimed) == sorted([holder.id, free.id])
    assert await status(store, delayed.id) == "inboxed"
    assert await task_row(store, delayed.id) is None
    assert await status(store, free.id) == "invoked"
    assert claimed[free.id].previous_status == "ready"


async def test_a_claim_never_leases_an_exclusive_invocation_that_does_not_hold_its_key(store):
    """Whatever left a runnable task of an exclusive handler without its key, no claim starts it."""
    holder = sub("Obj", "k")
    await store.submit(holder)
    stray = sub("Obj", "k")
    async with store.pool.connection() as conn:  # as if a bug had made it ready without the key
        await conn.execute(
            "INSERT INTO restate.invocation (id, service, handler, key, service_ty, handler_ty, status, input,"
            " invoked_by) VALUES (%s, 'Obj', 'h', 'k', 'virtual_object', 'exclusive', 'invoked', '', 'ingress')",
            (stray.id,))
        await conn.execute(
            "INSERT INTO restate.task (invocation_id, service, status, run_at) VALUES (%s, 'Obj', 'ready', now())",
            (stray.id,))
    assert [c.lease.invocation_id for c in await store.claim(W1, ["Obj"], 10)] == [holder.id]
    assert (await task_row(store, stray.id))["lease_owner"] is None


async def test_flush_writes_journal_state_and_calls_atomically(store):
    s = sub("Obj", "k")
    await store.submit(s)
    lease = (await claim_one(store)).lease
    callee = sub()
    batch = Batch(
        journal=[JournalRow(1, 1, None, "SetState", params={"name": "a"}, completed=True, value=b"1"),
                 JournalRow(2, 2, None, "Call", params={"invocation_id": callee.id})],
        state=[("Obj", "k", StateOp("set", "a", b"1"))],
        submissions=[callee],
    )
    await store.flush(lease, batch)
    assert await store.load_state("Obj", "k") == {"a": b"1"}
    assert (await store.get_invocation(callee.id))["status"] == "invoked"
    loaded = (await store.load([s.id]))[s.id]
    assert [r.entry_type for r in loaded.journal] == ["SetState", "Call"]


async def test_a_stale_attempt_can_write_nothing(store):
    s = sub("Obj", "k")
    await store.submit(s)
    stale = (await claim_one(store, W1)).lease
    # W1 is declared dead; W2 takes the invocation over
    async with store.pool.connection() as conn:
        await conn.execute("UPDATE restate.worker SET heartbeat_at = now() - interval '1 hour' WHERE id = %s", (W1,))
        await conn.commit()
    assert await store.reap(1000) == [s.id]
    fresh = (await claim_one(store, W2)).lease
    assert fresh.epoch == stale.epoch + 1
    attempts = [
        Batch(journal=[JournalRow(1, 1, None, "Run", name="x", completed=True, value=b"1")]),
        Batch(state=[("Obj", "k", StateOp("set", "a", b"stale"))]),
        Batch(submissions=[sub()]),
        Batch(outcome=Complete(b"stale", None, 1000, release_key=("Obj", "k"))),
        Batch(outcome=Suspend(None, 0)),
        Batch(outcome=Retry("backing-off", 10, "x", 500)),
    ]
    for batch in attempts:
        with pytest.raises(Fenced):
            await store.flush(stale, batch)
    assert await store.load_state("Obj", "k") == {}
    assert (await store.load([s.id]))[s.id].journal == []
    assert await status(store, s.id) == "invoked"
    async with store.pool.connection() as conn:
        assert await (await conn.execute("SELECT count(*) FROM restate.invocation")).fetchone() == (1,)
    await store.flush(fresh, Batch(outcome=Complete(b"fresh", None, 1000, release_key=("Obj", "k"))))
    assert bytes((await store.get_invocation(s.id))["output"]) == b"fresh"


async def test_concurrent_flushes_share_one_transaction(store):
    subs = [sub() for _ in range(6)]
    for s in subs:
        await store.submit(s)
    leases = [c.lease for c in await store.claim(W1, ["Svc"], 10)]
    before = store._committer.transactions
    await asyncio.gather(*(
        store.flush(lease, Batch(journal=[JournalRow(1, 1, None, "Run", name="x", completed=True, value=b"1")]))
        for lease in leases
    ))
    assert store._committer.transactions == before + 1
    loaded = await store.load([lease.invocation_id for lease in leases])
    assert all(len(inv.journal) == 1 for inv in loaded.values())


async def test_a_fenced_flush_fails_alone_when_its_group_rolls_back(store):
    subs = [sub() for _ in range(4)]
    for s in subs:
        await store.submit(s)
    leases = [c.lease for c in await store.claim(W1, ["Svc"], 10)]
    stale = Lease(leases[1].invocation_id, W1, leases[1].epoch + 7, 1)
    attempts = [leases[0], stale, leases[2], leases[3]]
    before = store._committer.transactions
    outcomes = await asyncio.gather(*(
        store.flush(lease, Batch(journal=[JournalRow(1, 1, None, "Run", name="x", completed=True, value=b"1")],
                                 outcome=Complete(b"done", None, 1000)))
        for lease in attempts
    ), return_exceptions=True)
    assert [type(o).__name__ for o in outcomes] == ["FlushResult", "Fenced", "FlushResult", "FlushResult"]
    assert store._committer.transactions == before + 1 + 4  # the group, then each request alone
    for lease in attempts:
        expected = "invoked" if lease is stale else "completed"
        assert await status(store, lease.invocation_id) == expected
    assert (await store.load([stale.invocation_id]))[stale.invocation_id].journal == []


async def test_suspension_and_wake_up_by_a_notification(store):
    caller = sub()
    await store.submit(caller)
    lease = (await claim_one(store)).lease
    result = await store.flush(lease, Batch(outcome=Suspend(None, 0)))
    assert result.suspended
    row = await task_row(store, caller.id)
    assert row["status"] == "suspended" and row["lease_owner"] is None and row["never"]
    assert await store.claim(W1, ["Svc"], 10) == []
    # the callee completes and delivers its result to the caller
    callee = sub(caller_id=caller.id, caller_command=1)
    await store.submit(callee)
    callee_claim = (await claim_one(store, W2)).lease
    await store.flush(callee_claim, Batch(outcome=Complete(b"42", None, 1000, caller=(caller.id, 1))))
    resumed = await claim_one(store)
    assert resumed.lease.invocation_id == caller.id and resumed.lease.epoch == 2
    loaded = (await store.load([caller.id]))[caller.id]
    assert [(m.command_index, m.value) for m in loaded.mailbox] == [(1, b"42")]


async def test_suspension_is_refused_when_a_notification_arrived_meanwhile(store):
    caller = sub()
    await store.submit(caller)
    claimed = await claim_one(store)
    callee = sub(caller_id=caller.id, caller_command=1)
    await store.submit(callee)
    callee_lease = (await claim_one(store, W2)).lease
    result = await store.flush(callee_lease, Batch(outcome=Complete(b"42", None, 1000, caller=(caller.id, 1))))
    assert result.caller_owner == W1  # the caller's owner is told to look at its mailbox
    # the caller read its wake-up counter before the delivery: its suspension must not go through
    assert not (await store.flush(claimed.lease, Batch(outcome=Suspend(None, claimed.wakeups)))).suspended
    wakeups, items = await store.read_mailbox(caller.id, 0)
    assert wakeups == claimed.wakeups + 1 and [i.value for i in items] == [b"42"]
    assert (await store.flush(claimed.lease, Batch(consumed=[items[0].seq], outcome=Suspend(None, wakeups)))).suspended


async def test_suspension_with_a_timer_becomes_due(store):
    s = sub()
    await store.submit(s)
    lease = (await claim_one(store)).lease
    async with store.pool.connection() as conn:
        wake_at = (await (await conn.execute("SELECT now() + interval '50 milliseconds'")).fetchone())[0]
    assert (await store.flush(lease, Batch(outcome=Suspend(wake_at, 0)))).suspended
    claimed = await eventually(lambda: store.claim(W1, ["Svc"], 10), what="the timer to become due")
    assert claimed[0].lease.invocation_id == s.id


async def test_retry_backs_off_and_pause_parks(store):
    s = sub()
    await store.submit(s)
    lease = (await claim_one(store)).lease
    await store.flush(lease, Batch(outcome=Retry("backing-off", 60_000, "boom", 500)))
    row = await task_row(store, s.id)
    assert row["status"] == "backing-off" and row["lease_owner"] is None and not row["due"]
    async with store.pool.connection() as conn:
        await conn.execute("UPDATE restate.task SET run_at = now() WHERE invocation_id = %s", (s.id,))
        await conn.commit()
    second = (await claim_one(store)).lease
    assert second.attempt == 2
    await store.flush(second, Batch(outcome=Retry("paused", 0, "boom", 500)))
    row = await task_row(store, s.id)
    assert row["status"] == "paused" and row["never"]


async def test_terminal_failure_is_stored(store):
    s = sub()
    await store.submit(s)
    lease = (await claim_one(store)).lease
    await store.flush(lease, Batch(outcome=Complete(None, Failure(418, "teapot", {"a": "b"}), 1000)))
    row = await store.get_invocation(s.id)
    assert (row["status"], row["result"], row["failure_code"], row["failure_message"], row["failure_metadata"]) == (
        "completed", "failure", 418, "teapot", {"a": "b"})


async def test_clean_unregister_hands_tasks_back_at_once(store):
    s = sub()
    await store.submit(s)
    await claim_one(store, W1)
    await store.unregister_worker(W1)
    row = await task_row(store, s.id)
    assert row["status"] == "ready" and row["lease_owner"] is None
    assert (await claim_one(store, W2)).lease.epoch == 2


async def test_claims_and_timers_use_the_partial_index_not_a_scan(store):
    """With many live invocations parked, claiming and finding the next timer stay index lookups."""
    async with store.pool.connection() as conn:
        await conn.execute(
            "INSERT INTO restate.task (invocation_id, service, status, run_at)"
            " SELECT 'parked-' || g, 'Svc', 'suspended', 'infinity' FROM generate_series(1, 20000) g")
        await conn.execute(
            "INSERT INTO restate.task (invocation_id, service, status, run_at, lease_owner)"
            " SELECT 'running-' || g, 'Svc', 'running', now(), 'someone' FROM generate_series(1, 20000) g")
        await conn.execute("ANALYZE restate.task")
        plans = []
        for query, params in (
            (store.q.CLAIM_TASKS, {"owner": W1, "services": ["Svc"], "fresh": ["Svc"], "limit": 32, "deployments": ["v1"],
                                 "deployment": "v1"}),
            (store.q.NEXT_DUE, {"services": ["Svc"], "fresh": ["Svc"], "deployments": ["v1"]}),
        ):
            cur = await conn.execute("EXPLAIN " + query, params)
            plans.append("\n".join(r[0] for r in await cur.fetchall()))
        await conn.rollback()
    for plan in plans:
        assert "task_due" in plan, plan
        assert "Seq Scan on task" not in plan, plan


async def test_a_claim_pins_to_the_claiming_deployment_and_a_takeover_re_pins(store):
    """A's invocation is claimable only by A until B is marked compatible; once B has run it,
    it belongs to B, and A (not marked compatible with B) may no longer resume it."""
    submitted = await store.submit(sub())
    (first,) = await store.claim(W1, ["Svc"], 10, ["A"])
    pinned = lambda: row_of(store, "SELECT t.deployment_id, i.deployment_id FROM restate.task t"
                                   " JOIN restate.invocation i ON i.id = t.invocation_id WHERE t.invocation_id = %s",
                            submitted.id)
    assert await pinned() == ("A", "A")
    await store.flush(first.lease, Batch(outcome=Retry("backing-off", 0, "again", 500)))
    assert await store.claim(W2, ["Svc"], 10, ["B"]) == []  # B may not resume A's invocation
    (second,) = await store.claim(W2, ["Svc"], 10, ["B", "A"])  # B marked compatible with A
    assert await pinned() == ("B", "B")
    await store.flush(second.lease, Batch(outcome=Retry("backing-off", 0, "again", 500)))
    assert await store.claim(W1, ["Svc"], 10, ["A"]) == []  # B wrote its journal now
    assert await store.next_due(["Svc"], ["A"]) is None  # and A's claim loop does not see it due


async def row_of(store: Store, sql: str, *params: typing.Any) -> typing.Optional[tuple]:
    async with store.pool.connection() as conn:
        return await (await conn.execute(sql, params)).fetchone()
