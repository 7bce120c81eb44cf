"""Durable timers: sleeps survive worker restarts, delayed sends wait for their time."""

from __future__ import annotations

import asyncio

import psycopg
import pytest

from tests.apps import kitchen
from tests.support.processes import WorkerProcess
from tests.support.server import serve

APP = "tests.apps.kitchen:app"


async def journaled_sleep(database_url: str, invocation_id: str):
    for _ in range(400):
        with psycopg.connect(database_url) as conn:
            row = conn.execute(
                "SELECT sleep_wakeup_at FROM restate.journal WHERE invocation_id = %s AND entry_type = 'Sleep'"
                " AND command_index IS NOT NULL", (invocation_id,)).fetchone()
        if row is not None:
            return row[0]
        await asyncio.sleep(0.02)
    raise AssertionError("the sleep was never journaled")


@pytest.mark.parametrize("how", ["restart", "sigkill"])
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
        with WorkerProcess(APP, clean_db, extra=["--inactivity-timeout", "30"]):
            result = await asyncio.wait_for(ingress.engine.result(invocation_id), 30)
    assert result.output == b'"rested"'
    with psycopg.connect(clean_db) as conn:
        completed_at, started = conn.execute(
            "SELECT completed_at, created_at FROM restate.invocation WHERE id = %s", (invocation_id,)).fetchone()
    assert completed_at >= wake_at  # never early
    # on time: the timer fired at its due time on the new worker, not at some later poll or retry
    assert (completed_at - wake_at).total_seconds() < 1.0


async def test_delayed_send_arrives_after_its_delay_and_not_before(clean_db, side_effects):
    async with serve(kitchen.app, clean_db) as ingress:
        assert (await ingress.client.post("/First/send_later", json="later")).json() == "scheduled"
        with psycopg.connect(clean_db) as conn:
            invocation_id, status, start_at = conn.execute(
                "SELECT id, status, scheduled_start_at FROM restate.invocation WHERE service = 'Counter'").fetchone()
        assert status == "scheduled"
        assert (await ingress.client.get("/Counter/later/items")).json() == []
        result = await asyncio.wait_for(ingress.engine.result(invocation_id), 30)
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
