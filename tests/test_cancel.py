"""Cancellation: from the admin API and from handlers, reaching callees two levels deep."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from tests.apps import awakeables
from tests.support.polling import eventually, row
from tests.support.server import SUSPENDING_IDS, serve, suspending_modes
from tests.test_awakeables import held_id


@pytest.fixture(params=suspending_modes(0.3), ids=SUSPENDING_IDS)
async def ingress(clean_db, request):
    async with serve(awakeables.app, clean_db, admin=True, inactivity_timeout=request.param) as served:
        yield served


async def result_of(ingress, invocation_id: str):
    result = await asyncio.wait_for(ingress.engine.results.wait(invocation_id), 30)
    assert result is not None
    return result


async def test_cancel_a_waiting_invocation_from_the_admin_api(ingress):
    key = uuid.uuid4().hex
    invocation_id = (await ingress.client.post("/Waiter/wait/send", json=key)).json()["invocationId"]
    await held_id(ingress, key)
    response = await ingress.client.patch(f"/admin/invocations/{invocation_id}/cancel")
    assert response.status_code == 202
    failure = (await result_of(ingress, invocation_id)).failure
    assert (failure.code, failure.message) == (409, "cancelled")
    again = await ingress.client.patch(f"/admin/invocations/{invocation_id}/cancel")
    assert again.status_code == 409


async def test_cancellation_reaches_a_callee_two_levels_deep(ingress):
    key = uuid.uuid4().hex
    top = (await ingress.client.post("/Chain/top/send", json=key)).json()["invocationId"]
    await held_id(ingress, key)  # top -> middle -> wait, blocked on its awakeable
    assert (await ingress.client.patch(f"/admin/invocations/{top}/cancel")).status_code == 202
    failure = (await result_of(ingress, top)).failure
    assert (failure.code, failure.message) == (409, "cancelled")
    async with ingress.engine.store.pool.connection() as conn:
        children = await (await conn.execute(
            "SELECT id FROM restate.invocation WHERE service IN ('Chain', 'Waiter') AND id <> %s", (top,))).fetchall()
    outcomes = {}
    for (child,) in children:  # the children are cancelled after their parent gave up
        failure = (await result_of(ingress, child)).failure
        outcomes[child] = (failure.code, failure.message)
    assert sorted(outcomes.values()) == [(409, "cancelled"), (409, "middle saw 409 cancelled")]


async def test_an_invocation_that_never_ran_ends_at_once(ingress):
    key = uuid.uuid4().hex
    holder = await ingress.client.post(f"/Holder/{key}/hold/send", json="x", params={"delay": "1h"})
    invocation_id = holder.json()["invocationId"]
    assert (await ingress.client.patch(f"/admin/invocations/{invocation_id}/cancel")).status_code == 200
    failure = (await result_of(ingress, invocation_id)).failure
    assert (failure.code, failure.message) == (409, "canceled")
    async with ingress.engine.store.pool.connection() as conn:
        assert await (await conn.execute(
            "SELECT count(*) FROM restate.task WHERE invocation_id = %s", (invocation_id,))).fetchone() == (0,)


async def test_a_handler_cancels_what_it_sent(ingress):
    key = uuid.uuid4().hex
    sent_id = (await ingress.client.post("/Chain/send_and_cancel", json=key)).json()
    failure = (await result_of(ingress, sent_id)).failure
    assert failure.code == 409


async def test_admin_errors(ingress):
    assert (await ingress.client.patch("/admin/invocations/nonsense/cancel")).status_code == 400
    missing = await ingress.client.patch("/admin/invocations/inv_1" + "0" * 33 + "/cancel")
    assert (missing.status_code, missing.json()["message"]) == (404, "invocation not found")


async def test_kill_ends_the_call_tree_at_once_and_frees_the_object_key(ingress):
    key = uuid.uuid4().hex
    top = (await ingress.client.post("/Chain/top/send", json=key)).json()["invocationId"]
    await held_id(ingress, key)
    assert (await ingress.client.patch(f"/admin/invocations/{top}/kill")).status_code == 200
    failure = (await result_of(ingress, top)).failure
    assert (failure.code, failure.message) == (409, "killed")
    async with ingress.engine.store.pool.connection() as conn:
        rows = await (await conn.execute(
            "SELECT handler, status, failure_message FROM restate.invocation WHERE service IN ('Chain', 'Waiter')"
            " ORDER BY handler")).fetchall()
        tasks = await (await conn.execute("SELECT count(*) FROM restate.task")).fetchone()
    assert rows == [("middle", "completed", "killed"), ("top", "completed", "killed"), ("wait", "completed", "killed")]
    assert tasks == (0,)
    assert (await ingress.client.patch(f"/admin/invocations/{top}/kill")).status_code == 409


async def test_killing_an_exclusive_holder_lets_the_next_call_run(ingress):
    key = uuid.uuid4().hex
    waiting = (await ingress.client.post("/Waiter/wait/send", json=key)).json()["invocationId"]
    await held_id(ingress, key)
    # Holder/key/block holds the key on an awakeable nobody resolves; a later hold() queues
    blocker = (await ingress.client.post(f"/Holder/{key}/block/send", json=None)).json()["invocationId"]
    queued = (await ingress.client.post(f"/Holder/{key}/hold/send", json="after")).json()["invocationId"]
    status = (lambda: row(ingress.engine, "SELECT status FROM restate.invocation WHERE id = %s", queued))
    assert await eventually(status, ("inboxed",)) == ("inboxed",)
    assert (await ingress.client.patch(f"/admin/invocations/{blocker}/kill")).status_code == 200
    assert (await result_of(ingress, queued)).failure is None  # the key passed on
    assert (await ingress.client.post(f"/Holder/{key}/held")).json() == "after"
    await ingress.client.patch(f"/admin/invocations/{waiting}/kill")


async def test_purge_forgets_a_completed_invocation_only(ingress):
    key = uuid.uuid4().hex
    waiting = (await ingress.client.post("/Waiter/wait/send", json=key)).json()["invocationId"]
    await held_id(ingress, key)
    refused = await ingress.client.patch(f"/admin/invocations/{waiting}/purge")
    assert refused.status_code == 409
    done = await ingress.client.post(f"/Holder/{key}/hold", json="x")
    invocation_id = done.headers["x-restate-id"]
    assert (await ingress.client.patch(f"/admin/invocations/{invocation_id}/purge")).status_code == 200
    assert (await ingress.client.get(f"/restate/invocation/{invocation_id}/output")).status_code == 404
    assert (await ingress.client.patch(f"/admin/invocations/{invocation_id}/purge")).status_code == 404
    async with ingress.engine.store.pool.connection() as conn:
        assert await (await conn.execute(
            "SELECT count(*) FROM restate.journal WHERE invocation_id = %s", (invocation_id,))).fetchone() == (0,)
    await ingress.client.patch(f"/admin/invocations/{waiting}/kill")


async def test_resume_runs_a_paused_invocation_again(ingress):
    awakeables.repaired["done"] = False
    invocation_id = (await ingress.client.post("/Fragile/until_repaired/send")).json()["invocationId"]
    status = (lambda: row(ingress.engine, "SELECT status FROM restate.task WHERE invocation_id = %s", invocation_id))
    assert await eventually(status, ("paused",)) == ("paused",)
    awakeables.repaired["done"] = True
    assert (await ingress.client.patch(f"/admin/invocations/{invocation_id}/resume")).status_code == 200
    assert (await result_of(ingress, invocation_id)).output == b'"repaired"'
    assert (await ingress.client.patch(f"/admin/invocations/{invocation_id}/resume")).status_code == 409
    delayed = (await ingress.client.post("/Fragile/until_repaired/send", params={"delay": "1h"})).json()["invocationId"]
    assert (await ingress.client.patch(f"/admin/invocations/{delayed}/resume")).status_code == 425
