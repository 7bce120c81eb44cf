"""Durable timers: sleeps survive worker restarts, delayed sends wait for their time."""

from __future__ import annotations

import asyncio

import psycopg
import pytest

from tests.apps import kitchen
from tests.support.polling import eventually
from tests.support.processes import WorkerProcess
from tests.support.server import serve

APP = "tests.apps.kitchen:app"


async def journaled_sleep(database_url: str, invocation_id: str):
    def wakeup_at():
        with psycopg.connect(database_url) as conn:
            row = conn.execute(
                "SELECT sleep_wakeup_at FROM restate.journal WHERE invocation_id = %s AND entry_type = 'Sleep'"
                " AND command_index IS NOT NULL", (invocation_id,)).fetchone()
        return None if row is None else row[0]

    return await eventually(wakeup_at, what="the sleep to be journaled")


@pytest.mark.parametrize("how", ["restart", "sigkill"])
@pytest.mark.slow
async def test_sleep_completes_on_time_across_a_worker_restart(clean_db, side_effects, how):
    async with serve(kitchen.app, clean_db, run_handlers=False, poll_interval=0.1) as ingress:
        first = WorkerProcess(APP, clean_db, extra=["--inactivity-timeout", "30"]).start()
        try:
            sent = await ingress.client.post("/Steps/nap/send", json=2000)
            invocation_id = sent.json()["invocationId"]
            wake_at = await journaled_sleep(clean_db, invocation_id)
            if how == "restart":
                first.stop()  # SIGTERM: the worker hands its invocations back as it leaves
            else:
                first.kill()
        finally:
            if first.process.poll() is None:
                first.kill()
        with WorkerProcess(APP, clean_db, extra=["--inactivity-timeout", "30"]) as second:
            result = await asyncio.wait_for(ingress.engine.results.wait(invocation_id), 30)
            with psycopg.connect(clean_db) as conn:
                (arrived_at,) = conn.execute("SELECT started_at FROM restate.worker WHERE pid = %s", (second.pid,)).fetchone()
    assert result.output == b'"rested"'
    with psycopg.connect(clean_db) as conn:
        completed_at, started = conn.execute(
            "SELECT completed_at, created_at FROM restate.invocation WHERE id = %s", (invocation_id,)).fetchone()
    assert completed_at >= wake_at  # never early
    # on time: the timer fired at its due time on the new worker, not at some later poll or retry;
    # or, when a loaded machine started the new worker after that time, as soon as it arrived
    assert (completed_at - max(wake_at, arrived_at)).total_seconds() < 1.0


async def test_delayed_send_arrives_after_its_delay_and_not_before(clean_db, side_effects):
    async with serve(kitchen.app, clean_db) as ingress:
        assert (await ingress.client.post("/First/send_later", json="later")).json() == "scheduled"
        with psycopg.connect(clean_db) as conn:
            invocation_id, status, start_at = conn.execute(
                "SELECT id, status, scheduled_start_at FROM restate.invocation WHERE service = 'Counter'").fetchone()
        assert status == "scheduled"
        assert (await ingress.client.get("/Counter/later/items")).json() == []
        result = await asyncio.wait_for(ingress.engine.results.wait(invocation_id), 30)
        assert result.output == b'["late"]'
    with psycopg.connect(clean_db) as conn:
        running_since = conn.execute(
            "SELECT min(appended_at) FROM restate.journal WHERE invocation_id = %s", (invocation_id,)).fetchone()[0]
        completed_at = conn.execute("SELECT completed_at FROM restate.invocation WHERE id = %s", (invocation_id,)).fetchone()[0]
    assert running_since >= start_at and completed_at >= start_at


async def test_poll_only_mode_needs_no_listen(clean_db, side_effects):
    async with serve(kitchen.app, clean_db, poll_only=True, inactivity_timeout=0.3) as ingress:
        assert ingress.engine._listener is None
        assert (await ingress.client.post("/First/chain", json=1)).json() == 111
        assert (await ingress.client.post("/Steps/nap", json=600)).json() == "rested"  # suspends, then resumes
        assert (await ingress.client.post("/Counter/p/add", json=3)).json() == 3


async def _task_states(database_url: str) -> dict[str, int]:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT t.status, count(*) FROM restate.task t JOIN restate.invocation i ON i.id = t.invocation_id"
            " WHERE i.handler = 'nap' GROUP BY t.status").fetchall()
    return dict(rows)


async def test_sleepers_waiting_in_memory_do_not_hold_the_workers_slots(clean_db):
    # Two slots, six sleepers: all six start and sleep at once instead of in three waves.
    async with serve(kitchen.app, clean_db, concurrency=2, inactivity_timeout=30) as ingress:
        ids = [(await ingress.client.post("/Steps/nap/send", json=3000)).json()["invocationId"] for _ in range(6)]
        for invocation_id in ids:
            await journaled_sleep(clean_db, invocation_id)
        assert await _task_states(clean_db) == {"running": 6}  # all leased here, none completed yet
        results = await asyncio.wait_for(asyncio.gather(*(ingress.engine.results.wait(i) for i in ids)), 30)
    assert all(r.output == b'"rested"' for r in results)


async def test_waiters_beyond_the_in_memory_limit_suspend_at_once(clean_db):
    async with serve(kitchen.app, clean_db, concurrency=4, inactivity_timeout=30) as ingress:
        ingress.engine.max_waiting = 2
        ids = [(await ingress.client.post("/Steps/nap/send", json=3000)).json()["invocationId"] for _ in range(4)]
        for invocation_id in ids:
            await journaled_sleep(clean_db, invocation_id)
        # suspension is the flush right after the journaled sleep
        states = await eventually(lambda: _task_states(clean_db), {"running": 2, "suspended": 2})
        assert states == {"running": 2, "suspended": 2}
        results = await asyncio.wait_for(asyncio.gather(*(ingress.engine.results.wait(i) for i in ids)), 30)
    assert all(r.output == b'"rested"' for r in results)
