"""The run queue (worker/slots.py `RunQueue`): a send that finds every slot of the worker taken
is still leased to it by its own submission, waits in memory, and starts as a slot frees up, in
the order the sends were accepted; no claim fetches it back from the database. A caller waiting
in the process gets no queue place (its submission goes to the database, as before)."""

from __future__ import annotations

import asyncio

import psycopg
import pytest

from tests.apps import gated
from tests.support.polling import eventually
from tests.support.server import serve


def tasks_of(database_url: str, ids: list[str]) -> dict[str, tuple]:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute("SELECT invocation_id, status, lease_owner, epoch FROM restate.task"
                            " WHERE invocation_id = ANY(%s)", (ids,)).fetchall()
    return {row[0]: row[1:] for row in rows}


def completion_order(database_url: str, ids: list[str]) -> list[str]:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute("SELECT id FROM restate.invocation WHERE id = ANY(%s) AND status = 'completed'"
                            " ORDER BY completed_at, modified_at", (ids,)).fetchall()
    return [row[0] for row in rows]


@pytest.fixture(autouse=True)
def fresh_gate():
    gated.reset()
    yield
    gated.gate.set()


async def test_sends_beyond_the_slots_are_leased_at_submission_and_start_in_order_as_slots_free(clean_db):
    async with serve(gated.app, clean_db, concurrency=1, inactivity_timeout=30) as ingress:
        engine = ingress.engine
        holder = (await ingress.client.post("/Gated/hold/send")).json()["invocationId"]
        await asyncio.wait_for(gated.started.wait(), 30)  # the only slot is busy now
        queued = []
        for tag in ("a", "b", "c"):
            response = await ingress.client.post("/Gated/quick/send", json=tag)
            assert response.status_code == 202
            queued.append(response.json()["invocationId"])
        assert engine.slots.active == 1 and len(engine.run_queue) == 3
        # leased here by their submissions (epoch 1), not started: no claim will fetch them
        assert tasks_of(clean_db, queued) == {i: ("running", engine.worker_id, 1) for i in queued}
        assert set(queued) <= engine.held()
        gated.gate.set()
        results = await asyncio.wait_for(asyncio.gather(*(engine.results.wait(i) for i in [holder, *queued])), 30)
        assert [r.output for r in results] == [b'"held"', b'"a"', b'"b"', b'"c"']
        assert completion_order(clean_db, [holder, *queued]) == [holder, *queued]
        assert engine.slots.active == 0 and len(engine.run_queue) == 0


async def test_a_waiting_caller_gets_no_queue_place(clean_db):
    async with serve(gated.app, clean_db, concurrency=1, inactivity_timeout=30, poll_interval=0.1) as ingress:
        engine = ingress.engine
        await ingress.client.post("/Gated/hold/send")
        await asyncio.wait_for(gated.started.wait(), 30)
        call = asyncio.ensure_future(ingress.client.post("/Gated/quick", json="waited"))
        await eventually(lambda: engine.results.waiters._waiters, what="the call to wait for its result")
        assert len(engine.run_queue) == 0  # it went to the database unleased, for a claim
        gated.gate.set()
        response = await asyncio.wait_for(call, 30)
        assert response.status_code == 200 and response.json() == "waited"


async def test_a_worker_that_stops_hands_its_queued_sends_back(clean_db):
    async with serve(gated.app, clean_db, concurrency=1, inactivity_timeout=30) as ingress:
        engine = ingress.engine
        await ingress.client.post("/Gated/hold/send")
        await asyncio.wait_for(gated.started.wait(), 30)
        queued = [(await ingress.client.post("/Gated/quick/send", json=tag)).json()["invocationId"] for tag in "ab"]
        assert len(engine.run_queue) == 2
    # unregistered: ready for any worker, never started here
    assert tasks_of(clean_db, queued) == {i: ("ready", None, 1) for i in queued}
    assert len(engine.run_queue) == 2  # none started while the worker was leaving
