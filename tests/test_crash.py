"""Crash tests with real worker processes, killed with SIGKILL.

The ingress runs in this process and executes nothing (`run_handlers=False`), so every invocation
runs in a worker subprocess that the test can kill at a chosen point.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time

import psycopg
import pytest

from tests.apps import crash
from tests.support import ledger
from tests.support.crashing import killed_and_rescued
from tests.support.polling import eventually
from tests.support.processes import WorkerProcess
from tests.support.server import serve

APP = "tests.apps.crash:app"


@pytest.fixture
async def ingress(clean_db, side_effects):
    async with serve(crash.app, clean_db, run_handlers=False, poll_interval=0.1) as served:
        yield served


@pytest.mark.slow
async def test_crash_free_reference_run(ingress, clean_db):
    with WorkerProcess(APP, clean_db):
        response = await ingress.client.post("/Journey/reference/walk", json=crash.STEPS)
    assert response.status_code == 200
    assert response.json() == [f"reference:{i}" for i in range(crash.STEPS)]
    assert ledger.steps("reference") == [f"step{i}" for i in range(crash.STEPS)]


@pytest.mark.parametrize("position", range(crash.STEPS))
@pytest.mark.slow
async def test_sigkill_at_every_journal_position(ingress, clean_db, position):
    key = f"crash-at-{position}"
    call = ingress.client.post(f"/Journey/{key}/walk", json=crash.STEPS)
    async with killed_and_rescued(call, APP, clean_db, key, {"CRASH_HOLD_AT": str(position)}) as (_, _, response):
        state = (await ingress.client.get(f"/Journey/{key}/state")).json()
    assert response.status_code == 200
    assert response.json() == [f"{key}:{i}" for i in range(crash.STEPS)]
    # every journaled step ran exactly once, across both workers
    assert ledger.steps(key) == [f"step{i}" for i in range(crash.STEPS)]
    assert state == {"progress": crash.STEPS - 1, "done": response.json()}


@pytest.mark.slow
async def test_a_paused_worker_past_its_lease_cannot_write(ingress, clean_db):
    """SIGSTOP a worker inside a ctx.run; another takes over and finishes; the first one's writes are refused."""
    key = "zombie"
    zombie = WorkerProcess(APP, clean_db, env={"STALL": "1"}).start()
    try:
        call = asyncio.ensure_future(ingress.client.post(f"/Journey/{key}/stall"))
        await eventually(lambda: ledger.count(key) > 0, what="the zombie to start its step")
        zombie.signal(signal.SIGSTOP)
        with WorkerProcess(APP, clean_db) as rescuer:
            response = await asyncio.wait_for(call, 60)
            assert response.status_code == 200
            assert response.json() == rescuer.pid
            zombie.signal(signal.SIGCONT)
            # the zombie wakes up, finishes its ctx.run and tries to journal it and write state
            await eventually(lambda: ledger.count(key, f"slow by {zombie.pid}") == 1, what="the zombie's step")
            await eventually(
                lambda: "lost its lease" in zombie.log() or "declared dead" in zombie.log(),
                what="the zombie to find out it lost the invocation",
            )
            assert (await ingress.client.get(f"/Journey/{key}/writer")).json() == rescuer.pid
    finally:
        zombie.kill()
    with psycopg.connect(clean_db) as conn:
        runs = conn.execute(
            "SELECT name, value FROM restate.journal j JOIN restate.invocation i ON i.id = j.invocation_id"
            " WHERE i.key = %s AND j.entry_type = 'Run' ORDER BY j.index", (key,)).fetchall()
    # one journal entry per step, both written by the rescuer: the zombie's writes were refused
    assert [name for name, _ in runs] == ["slow", "after"]
    assert bytes(runs[0][1]) == str(rescuer.pid).encode()
    assert ledger.steps(key).count(f"after by {zombie.pid}") == 0


#: What the race must have shown on every key before it may stop: both worker processes ran the
#: key, it changed hands between them HANDOFFS times, and RESUMED_ELSEWHERE of its invocations
#: suspended in one process and resumed in the other.
HANDOFFS = 10
RESUMED_ELSEWHERE = 3
#: The race fails if it has not shown that within this many seconds (about 10 on an idle machine;
#: a heavily loaded one, with the workers' every step slow, took over 60).
RACE_LIMIT_SECONDS = 120.0


def race_coverage(database_url: str, keys: list[str]) -> dict[str, tuple[set[int], int, int]]:
    """Per key, from the ledger: the processes that ran it, how often it changed hands between
    them, and how many of its invocations resumed in another process than the one that began them."""
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT tag, step, pid FROM public.side_effect WHERE tag LIKE 'race:%' ORDER BY tag, at, id").fetchall()
    coverage = {}
    for key in keys:
        events = [(step, pid) for tag, step, pid in rows if tag == f"race:{key}"]
        enters = [pid for step, pid in events if step == "enter"]
        runs = [(events[i][1], events[i + 1][1]) for i in range(0, len(events) - 1, 2)]  # (enter, exit)
        handoffs = sum(1 for before, after in zip(enters, enters[1:]) if before != after)
        coverage[key] = (set(enters), handoffs, sum(1 for began, ended in runs if began != ended))
    return coverage


@pytest.mark.slow
async def test_two_workers_racing_on_the_same_keys(ingress, clean_db):
    """Two worker processes race for six object keys, with invocations that suspend and others
    that finish in memory, until the race has really happened on every key (see HANDOFFS): no
    invocation is lost or run twice, and no two executions of one key ever overlap.

    RESTATE_PG_RACE_SECONDS makes it race at least that long (a soak run); by default it stops as
    soon as every key is covered, within RACE_LIMIT_SECONDS."""
    keys = [f"r{i}" for i in range(6)]
    soak = float(os.environ.get("RESTATE_PG_RACE_SECONDS", "0"))
    sent = {key: 0 for key in keys}
    # Leases long enough that neither worker is declared dead while alive, however late a loaded
    # machine runs its heartbeats: after such a takeover, a step whose result the first runner had
    # not journaled yet runs again (ctx.run is at least once), which the ledger shows as overlap.
    options = dict(lease_seconds=15.0, extra=["--inactivity-timeout", "0.05"])
    with WorkerProcess(APP, clean_db, **options) as first, WorkerProcess(APP, clean_db, **options) as second:
        started = time.monotonic()
        i = 0
        while True:
            batch = []
            for _ in range(12):
                key = keys[i % len(keys)]
                nap = (0, 0, 20, 120)[(i // len(keys)) % 4]  # every key: some suspend, some finish in memory
                sent[key] += 1
                batch.append(ingress.client.post(f"/Racer/{key}/bump/send", json=nap))
                i += 1
            assert all(r.status_code == 202 for r in await asyncio.gather(*batch))
            await asyncio.sleep(0.2)
            coverage = race_coverage(clean_db, keys)
            covered = all(pids == {first.pid, second.pid} and handoffs >= HANDOFFS and resumed >= RESUMED_ELSEWHERE
                          for pids, handoffs, resumed in coverage.values())
            elapsed = time.monotonic() - started
            if covered and elapsed >= soak:
                break
            assert elapsed < max(soak, RACE_LIMIT_SECONDS), f"the race did not cover every key: {coverage}"

        async def all_done():
            counts = [(await ingress.client.get(f"/Racer/{k}/count")).json() for k in keys]
            return counts == [sent[k] for k in keys]

        assert await eventually(all_done, timeout_s=60, interval_s=0.05) is True, "some invocations never completed"
        logs = f"worker {first.pid}:\n{first.log()}\nworker {second.pid}:\n{second.log()}"
    with psycopg.connect(clean_db) as conn:
        assert conn.execute("SELECT count(*) FROM restate.task").fetchone()[0] == 0
        assert conn.execute("SELECT count(*) FROM restate.inbox").fetchone()[0] == 0
        rows = conn.execute(
            "SELECT tag, step, pid FROM public.side_effect WHERE tag LIKE 'race:%' ORDER BY tag, at, id").fetchall()
    for key in keys:
        events = [step for tag, step, _ in rows if tag == f"race:{key}"]
        # strictly alternating enter/exit: no two executions of one key ever overlapped
        assert events == ["enter", "exit"] * sent[key], (
            [(step, pid) for tag, step, pid in rows if tag == f"race:{key}"], logs)
