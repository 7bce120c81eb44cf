"""Issue 11's diagnoses, each reproduced deterministically with failures injected at the store
boundary (`restate_pg.store.faults`): exclusivity under a failed start, a claimed batch that
must never be stranded, a hand-back that gives up, a worker blocked by another worker's row lock,
and background failures that must be logged once."""

from __future__ import annotations

import asyncio
import gc
import logging
import typing

import orjson
import psycopg
import pytest

from restate_pg.api.app import App
from restate_pg.runtime.submission import new_submission
from restate_pg.services.outcomes import Resolved
from restate_pg.store.driver import Store
from restate_pg.store.faults import FaultPlan
from restate_pg.worker.engine import Engine
from tests.apps import vault
from tests.support import exclusivity
from tests.support.polling import eventually

LEASE = 1.5  # seconds: heartbeats every 0.5 s, so recovery paths show up within a few seconds


@pytest.fixture
def monitored(clean_db: str) -> typing.Iterator[str]:
    exclusivity.install(clean_db)
    yield clean_db
    exclusivity.uninstall(clean_db)


def worker(dsn: str, faults: str = "", app: App = vault.app, **options: typing.Any) -> Engine:
    options.setdefault("lease_seconds", LEASE)
    options.setdefault("poll_interval", 0.1)
    return Engine(app, dsn, faults=FaultPlan.parse(faults) if faults else None, **options)


def submission(handler: str, key: str, value: typing.Any = None, **options: typing.Any):
    return new_submission(vault.app.handler("Vault", handler), key, orjson.dumps(value) if value is not None else b"", **options)


async def status_of(store: Store, invocation_id: str) -> typing.Optional[str]:
    row = await store.get_invocation(invocation_id)
    return None if row is None else row["status"]


async def output_of(store: Store, invocation_id: str) -> typing.Any:
    row = await store.get_invocation(invocation_id)
    assert row is not None and row["status"] == "completed", row
    assert row["result"] == "success", row
    return orjson.loads(row["output"])


async def awakeable_of(store: Store, invocation_id: str) -> typing.Optional[str]:
    async with store.pool.connection() as conn:
        row = await (await conn.execute(
            "SELECT convert_from(value, 'UTF8') FROM restate.journal WHERE invocation_id = %s AND entry_type = 'Awakeable'",
            (invocation_id,))).fetchone()
    return None if row is None else row[0]


async def hold_key(engine: Engine, key: str) -> typing.Tuple[str, str]:
    """Start `hold` on `key` and return (its id, its awakeable id) once it holds the key."""
    sub = submission("hold", key)
    await engine.submissions.submit(sub)
    store = engine.store
    awakeable = await eventually(lambda: awakeable_of(store, sub.id), what="hold to journal its awakeable")
    return sub.id, awakeable


# -- 1. exclusivity -------------------------------------------------------------------------------


async def test_delayed_exclusive_send_waits_for_its_key_when_its_first_start_fails(monitored):
    """Diagnosis 1: a due delayed send whose first start failed must still queue behind its key."""
    engine = worker(monitored, "load_invocations:before=x1,start_scheduled:before=x1")
    await engine.start()
    try:
        holder, awakeable = await hold_key(engine, "k1")
        delayed = submission("deposit", "k1", 5, delay_ms=100)
        await engine.submissions.submit(delayed)
        seen = await eventually(lambda: status_of(engine.store, delayed.id), "inboxed", timeout_s=10)
        assert seen == "inboxed", f"the delayed deposit is {seen!r} while {holder} holds its key"
        assert await engine.awakeables.resolve(awakeable, b'"done"') == Resolved()
        assert await eventually(lambda: status_of(engine.store, delayed.id), "completed") == "completed"
        assert await output_of(engine.store, delayed.id) == 5
    finally:
        await engine.stop()
    assert exclusivity.violations(monitored) == []


async def test_a_non_holder_cannot_hand_an_object_key_over(clean_db):
    """Diagnosis 1, second half: release_object_key by an invocation that does not hold the key
    is refused (and reported), and neither the key nor its inbox changes."""
    with psycopg.connect(clean_db, autocommit=True) as conn:
        conn.execute("INSERT INTO restate.object_lock (service, key, invocation_id) VALUES ('Vault', 'k', 'holder')")
        conn.execute("INSERT INTO restate.inbox (service, key, invocation_id) VALUES ('Vault', 'k', 'queued')")
        notices: typing.List[str] = []
        conn.add_notice_handler(lambda diag: notices.append(diag.message_primary or ""))
        with conn.transaction():
            conn.execute("SELECT restate.lock_object_key('Vault', 'k')")
            handed = conn.execute("SELECT restate.release_object_key('Vault', 'k', 'stranger', NULL)").fetchone()
        assert handed == (None,)
        assert conn.execute("SELECT invocation_id FROM restate.object_lock").fetchall() == [("holder",)]
        assert conn.execute("SELECT invocation_id FROM restate.inbox").fetchall() == [("queued",)]
        assert any("does not hold" in n for n in notices), notices


# -- 2. a claimed batch is started or handed back ---------------------------------------------------


async def test_a_claimed_batch_is_never_stranded_by_a_failing_start(monitored):
    """Diagnosis 2: when starting one claimed task fails, it and the rest of its batch still run."""
    engine = worker(monitored, "start_scheduled:before=x1,load_invocations:after=x1")
    await engine.start()
    try:
        sends = [submission("deposit", f"b{i}", 1, delay_ms=150) for i in range(5)]
        for sub in sends:
            await engine.submissions.submit(sub)
        for sub in sends:
            assert await eventually(lambda sub=sub: status_of(engine.store, sub.id), "completed", timeout_s=15) == "completed"
            assert await output_of(engine.store, sub.id) == 1
    finally:
        await engine.stop()
    assert exclusivity.violations(monitored) == []


# -- 3. a hand-back that gives up ---------------------------------------------------------------------


async def test_a_lease_the_worker_could_not_hand_back_is_released_by_its_own_heartbeat(monitored):
    """Diagnosis 3: the load of a claimed invocation fails and so does every try to hand it back;
    its live worker must still give it up (it has no attempt for it), and then it runs."""
    ingress = Store(monitored)
    await ingress.open()
    engine = worker(monitored, "load_invocations:before=x1,flush:before=x4")
    engine.release_backoff = (0.05, 0.05, 0.05, 0.05)
    await engine.start()
    try:
        sub = submission("deposit", "r1", 7)
        await ingress.submit(sub)
        engine._work.set()
        assert await eventually(lambda: status_of(ingress, sub.id), "completed", timeout_s=20) == "completed"
        assert await output_of(ingress, sub.id) == 7
    finally:
        await engine.stop()
        await ingress.close()


# -- 4. a worker blocked by another worker's locks ----------------------------------------------------


@pytest.mark.slow  # over four seconds: the full suite's, not the quick run's
async def test_a_worker_stays_alive_while_a_frozen_worker_holds_a_row_it_would_reap(clean_db):
    """Diagnosis 4: a frozen worker's open transaction holds the task row of a dead worker's
    invocation. Reaping must not wait for it, and the healthy worker's heartbeat must stay fresh."""
    ingress = Store(clean_db)
    await ingress.open()
    await ingress.register_worker("ghost", "elsewhere", 1, ["Vault"])
    sub = submission("deposit", "g1", 3)
    await ingress.submit(sub)
    assert [c.lease.invocation_id for c in await ingress.claim("ghost", ["Vault"], 1)] == [sub.id]
    with psycopg.connect(clean_db, autocommit=True) as conn:
        conn.execute("UPDATE restate.worker SET heartbeat_at = now() - interval '1 hour' WHERE id = 'ghost'")
    frozen = psycopg.connect(clean_db)  # a worker stopped in the middle of a transaction
    frozen.execute("SELECT 1 FROM restate.task WHERE invocation_id = %s FOR UPDATE", (sub.id,))
    engine = worker(clean_db)
    await engine.start()
    try:
        ages = []
        for _ in range(int(3 * LEASE / 0.1)):  # three lease periods: the property must hold throughout
            async with ingress.pool.connection() as c:
                row = await (await c.execute(
                    "SELECT extract(epoch FROM now() - heartbeat_at) FROM restate.worker WHERE id = %s",
                    (engine.worker_id,))).fetchone()
            ages.append(None if row is None else float(row[0]))
            await asyncio.sleep(0.1)
        assert None not in ages, "the healthy worker was declared dead"
        assert max(ages) < LEASE, f"the healthy worker's heartbeat went stale: {max(ages):.2f}s"
        frozen.rollback()
        assert await eventually(lambda: status_of(ingress, sub.id), "completed", timeout_s=15) == "completed"
        assert await output_of(ingress, sub.id) == 3
    finally:
        frozen.close()
        await engine.stop()
        await ingress.close()


# -- 5. background failures ---------------------------------------------------------------------------


async def test_failed_wake_ups_are_logged_once_and_never_as_unretrieved_task_errors(clean_db, caplog):
    """Diagnosis 5: a completion whose NOTIFY to the waiting process fails is logged by restate-pg,
    once, and the waiting caller still gets its result by polling."""
    caller = Engine(App([]), clean_db, run_handlers=False, poll_interval=0.1)
    engine = worker(clean_db, "notify:before=1.0")
    await caller.start()
    await engine.start()
    caplog.set_level(logging.DEBUG)
    try:
        results = []
        for i in range(3):
            submitted, result = await caller.submissions.call(submission("deposit", "n1", 1, idempotency_key=f"n-{i}"))
            results.append(orjson.loads(result.output))
        assert results == [1, 2, 3]
    finally:
        await engine.stop()
        await caller.stop()
    gc.collect()
    await asyncio.sleep(0)
    assert not [r for r in caplog.records if "never retrieved" in r.getMessage()]
    failures = [r for r in caplog.records if r.name.startswith("restate_pg") and "injected fault" in r.getMessage()]
    assert [r.levelno for r in failures].count(logging.WARNING) == 1, [(r.levelname, r.getMessage()) for r in failures]


# -- (c) a live worker never holds a lease it has no attempt for ----------------------------------------


async def test_a_live_worker_releases_a_lease_it_has_no_attempt_for(clean_db):
    """Whatever path leased a task to a worker without an attempt (here: a claim whose answer
    never reached it), its own heartbeat gives the task back, and the task runs."""
    engine = worker(clean_db)
    await engine.start()
    ingress = Store(clean_db)
    await ingress.open()
    try:
        sub = submission("deposit", "c1", 2)
        await ingress.submit(sub)
        claimed = await ingress.claim(engine.worker_id, ["Vault"], 1)  # the engine never heard of it
        if claimed:
            assert claimed[0].lease.invocation_id == sub.id
        assert await eventually(lambda: status_of(ingress, sub.id), "completed", timeout_s=15) == "completed"
        assert await output_of(ingress, sub.id) == 2
    finally:
        await engine.stop()
        await ingress.close()


# -- after an outage, nobody is declared dead for the outage itself ------------------------------------


def count_reaps(engine: Engine, reaps: typing.Dict[str, int]) -> None:
    """Count the reaping rounds `engine` completes in `reaps` (by worker id)."""
    reap = engine.store.reap

    async def counted(lease_ms: int) -> typing.Any:
        reaped = await reap(lease_ms)
        reaps[engine.worker_id] += 1
        return reaped

    engine.store.reap = counted  # type: ignore[method-assign]


@pytest.mark.slow  # over four seconds: the full suite's, not the quick run's
async def test_after_the_database_was_unreachable_no_worker_reaps_the_others(clean_db, caplog):
    """Every worker's heartbeat is stale after an outage; the first worker back must not declare
    the others dead for it (they would abandon all their work): it reaps only after its own
    heartbeats have succeeded for a whole lease, by which time the others have beaten again."""
    first = worker(clean_db, "heartbeat:before=x3")  # back after 1.5 s
    second = worker(clean_db, "heartbeat:before=x5")  # back after 2.5 s
    reaps = {first.worker_id: 0, second.worker_id: 0}
    for engine in (first, second):
        count_reaps(engine, reaps)
    await first.start()
    await second.start()
    caplog.set_level(logging.ERROR, logger="restate_pg.worker")
    try:
        injected = lambda: second.store.faults.injected.get(("heartbeat", "before"), 0)
        assert await eventually(injected, 5, timeout_s=10) == 5
        beats = lambda: (first.liveness.beating_since is not None, second.liveness.beating_since is not None)
        assert await eventually(beats, (True, True), timeout_s=10) == (True, True)
        # A premature reap would come in a worker's first reaping round: both have had theirs.
        assert await eventually(lambda: min(reaps.values()) >= 1, timeout_s=10) is True
        with psycopg.connect(clean_db, autocommit=True) as conn:
            alive = {r[0] for r in conn.execute("SELECT id FROM restate.worker").fetchall()}
        assert alive == {first.worker_id, second.worker_id}
    finally:
        await second.stop()
        await first.stop()
    assert not [r for r in caplog.records if "declared dead" in r.getMessage()]
