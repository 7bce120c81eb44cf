"""A connection lost before or after any statement of the claim and flush paths commits leaves a
state that the worker finishes on its own: one test per row of the table "A connection lost
before, during or after a commit" in docs/invocation-lifecycle.md.

Each case runs the same small workload on a worker whose store fails the named operation the
first two times it runs, either before the statement reaches PostgreSQL or after it committed
(the reply is lost: "during" a commit looks the same to the client). Then every invocation must
complete exactly once, each key's balance must be the sum of its deposits, no exclusive attempt
may have run without its key, and no task, inbox row, key or notification may be left over.
"""

from __future__ import annotations

import typing

import orjson
import pytest

from restate_pg.store.driver import Store
from restate_pg.store.faults import InjectedFault
from tests.support import exclusivity
from tests.support.polling import eventually
from tests.test_recovery import status_of, submission, worker

#: (operation, when) of every row of the table, in the order of the table.
CASES = [
    ("submit", "before"), ("submit", "after"),
    ("start_due_scheduled", "before"), ("start_due_scheduled", "after"),
    ("claim_tasks", "before"), ("claim_tasks", "after"),
    ("load_invocations", "before"), ("load_invocations", "after"),
    ("flush", "before"), ("flush", "after"),
    ("read_mailbox", "before"), ("read_mailbox", "after"),
    ("heartbeat", "before"), ("heartbeat", "after"),
    ("reap_workers", "before"), ("reap_workers", "after"),
    ("notify", "before"),
]

KEYS = ("a", "b")


@pytest.fixture
def monitored(clean_db: str) -> typing.Iterator[str]:
    exclusivity.install(clean_db)
    yield clean_db
    exclusivity.uninstall(clean_db)


async def submit_until_accepted(engine: typing.Any, sub: typing.Any) -> None:
    """What a client does when its request fails: send it again, with the same idempotency key."""
    for _ in range(10):
        try:
            await engine.submissions.submit(sub)
            return
        except InjectedFault:
            continue
    raise AssertionError(f"{sub.id} was never accepted")


async def balances(store: Store) -> typing.Dict[str, int]:
    async with store.pool.connection() as conn:
        rows = await (await conn.execute(
            "SELECT key, value FROM restate.state_entry WHERE service = 'Vault' AND name = 'balance'")).fetchall()
    return {key: orjson.loads(value) for key, value in rows}


async def leftovers(store: Store) -> typing.Tuple[int, ...]:
    async with store.pool.connection() as conn:
        row = await (await conn.execute(
            "SELECT (SELECT count(*) FROM restate.task), (SELECT count(*) FROM restate.inbox),"
            " (SELECT count(*) FROM restate.object_lock), (SELECT count(*) FROM restate.notification)")).fetchone()
    return tuple(row)


@pytest.mark.parametrize(("operation", "when"), CASES, ids=[f"{o}-{w}" for o, w in CASES])
async def test_a_lost_connection_is_recovered_without_an_operator(monitored, operation, when):
    engine = worker(monitored, f"{operation}:{when}=x2", inactivity_timeout=0.3)
    engine.release_backoff = (0.05, 0.05)
    ingress = Store(monitored)  # another process's submissions: claimed and loaded by the worker
    await ingress.open()
    await ingress.register_worker("ghost", "elsewhere", 1, ["Vault"])  # a dead worker's lease to reap
    orphan = submission("deposit", "c", 1)
    await ingress.submit(orphan)
    await ingress.claim("ghost", ["Vault"], 1)
    async with ingress.pool.connection() as conn:
        await conn.execute("UPDATE restate.worker SET heartbeat_at = now() - interval '1 hour' WHERE id = 'ghost'")
    await engine.start()
    try:
        deposits = {key: [] for key in KEYS}
        for key in KEYS:
            claimed = submission("deposit", key, 1)
            await ingress.submit(claimed)
            deposits[key].append(claimed.id)
            for i in range(2):
                local = submission("deposit", key, 1, idempotency_key=f"{key}-{i}")
                await submit_until_accepted(engine, local)
                deposits[key].append(local.id)
            delayed = submission("deposit", key, 1, idempotency_key=f"{key}-late", delay_ms=50)
            await submit_until_accepted(engine, delayed)
            deposits[key].append(delayed.id)
        transfer = submission("transfer", "t", "a")  # a call whose result reaches a mailbox
        await ingress.submit(transfer)
        everything = [orphan.id, transfer.id, *(i for ids in deposits.values() for i in ids)]
        for invocation_id in everything:
            seen = await eventually(lambda i=invocation_id: status_of(ingress, i), "completed", timeout_s=20)
            assert seen == "completed", (invocation_id, seen)
        injected = lambda: engine.store.faults.injected.get((operation, when), 0) >= 1
        assert await eventually(injected, True, timeout_s=5), "the fault never fired"
    finally:
        await engine.stop()
    try:
        assert await balances(ingress) == {"a": 5, "b": 4, "c": 1}
        for key, ids in deposits.items():
            outputs = [orjson.loads((await ingress.get_invocation(i))["output"]) for i in ids]
            assert len(set(outputs)) == len(outputs), (key, outputs)  # one after another, each once
        assert await leftovers(ingress) == (0, 0, 0, 0)
    finally:
        await ingress.close()
    assert exclusivity.violations(monitored) == []


def test_the_fault_plan_reads_its_environment_format() -> None:
    """`RESTATE_PG_FAULTS` as the fault-injection suite sets it on worker processes."""
    from restate_pg.store.faults import FaultPlan

    plan = FaultPlan.parse("claim_tasks:before=x1,flush:after=0.5;seed=3")
    with pytest.raises(InjectedFault):
        plan.check("claim_tasks", "before")
    plan.check("claim_tasks", "before")  # x1: only the first time
    fired = 0
    for _ in range(200):
        try:
            plan.check("flush", "after")
        except InjectedFault:
            fired += 1
    assert 50 < fired < 150
    for bad in ("flush", "flush:during=1", "flush:before=2", "flush:before=x", "flush:before=1;speed=2"):
        with pytest.raises(ValueError):
            FaultPlan.parse(bad)
