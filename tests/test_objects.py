"""Virtual objects: one exclusive handler per key at a time, FIFO, shared handlers alongside."""

from __future__ import annotations

import asyncio

import psycopg
import pytest

from tests.apps import kitchen
from tests.support import ledger
from tests.support.polling import eventually
from tests.support.server import serve


async def _json(response):
    return (await response).json()


@pytest.fixture
async def ingress(clean_db, side_effects):
    async with serve(kitchen.app, clean_db, inactivity_timeout=2.0) as served:
        yield served


async def test_concurrent_exclusive_calls_on_one_key_never_lose_an_update(ingress):
    results = await asyncio.gather(*(ingress.client.post("/Counter/hot/add", json=1) for _ in range(100)))
    assert all(r.status_code == 200 for r in results)
    # strictly one at a time: every call saw a different count, none was lost
    assert sorted(r.json() for r in results) == list(range(1, 101))
    assert (await ingress.client.get("/Counter/hot/get")).json() == 100


async def test_exclusive_calls_run_in_arrival_order(ingress):
    # Hold the key so that everything after queues in its inbox, then submit in a known order.
    held = await ingress.client.post("/Counter/fifo/hold/send", json=500)
    assert held.status_code == 202
    for i in range(30):
        response = await ingress.client.post("/Counter/fifo/append/send", json=f"v{i}")
        assert response.status_code == 202  # accepted, i.e. committed to the inbox, in this order
    items = await eventually(lambda: _json(ingress.client.get("/Counter/fifo/items")), [f"v{i}" for i in range(30)])
    assert items == [f"v{i}" for i in range(30)]


async def test_calls_to_different_keys_run_in_parallel_and_one_key_serially(ingress):
    calls = [ingress.client.post(f"/Counter/k{i % 4}/span", json=f"c{i}") for i in range(12)]
    assert [r.status_code for r in await asyncio.gather(*calls)] == [200] * 12
    intervals = {}
    with psycopg.connect(ledger.dsn()) as conn:
        rows = conn.execute("SELECT tag, step, at FROM public.side_effect WHERE tag LIKE 'span:%' ORDER BY at").fetchall()
    for tag, step, at in rows:
        kind, label = step.split()
        intervals.setdefault((tag, label), {})[kind] = at
    by_key = {}
    for (tag, label), span in intervals.items():
        by_key.setdefault(tag, []).append((span["start"], span["end"]))
    assert len(by_key) == 4 and all(len(v) == 3 for v in by_key.values())
    for spans in by_key.values():  # same key: no two executions overlap
        spans.sort()
        assert all(a_end <= b_start for (_, a_end), (b_start, _) in zip(spans, spans[1:]))
    everything = [(tag, s, e) for tag, spans in by_key.items() for s, e in spans]
    overlapping = any(
        t1 != t2 and s1 < e2 and s2 < e1 for t1, s1, e1 in everything for t2, s2, e2 in everything
    )
    assert overlapping, "executions on different keys never overlapped"


async def test_shared_handler_answers_while_exclusive_handler_sleeps(ingress):
    client = ingress.client
    held = await client.post("/Counter/busy/hold/send", json=3000)
    held_id = held.json()["invocationId"]
    await eventually(lambda: _json(client.get("/Counter/busy/holding")), True, what="the exclusive handler to start")
    # An exclusive call queues behind the sleeping holder...
    queued = await client.post("/Counter/busy/add/send", json=1)
    queued_id = queued.json()["invocationId"]
    async with ingress.engine.store.pool.connection() as conn:
        holder = await (await conn.execute(
            "SELECT invocation_id FROM restate.object_lock WHERE service = 'Counter' AND key = 'busy'")).fetchone()
        inboxed = await (await conn.execute(
            "SELECT invocation_id FROM restate.inbox WHERE service = 'Counter' AND key = 'busy'")).fetchall()
    assert holder[0] == held_id
    assert [r[0] for r in inboxed] == [queued_id]
    # ...while shared handlers keep answering, and see the state it stored.
    assert (await client.get("/Counter/busy/holding")).json() is True
    assert (await client.get("/Counter/busy/get")).json() == 0
    # When the holder finishes, the queued call runs.
    assert await eventually(lambda: _json(client.get("/Counter/busy/get")), 1) == 1
    assert (await client.get("/Counter/busy/holding")).json() is False
