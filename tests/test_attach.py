"""Attach to and read the output of invocations over HTTP, by id, idempotency key or target body."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from tests.apps import awakeables
from tests.support.polling import eventually, row
from tests.support.server import serve
from tests.test_awakeables import held_id


@pytest.fixture
async def ingress(clean_db):
    async with serve(awakeables.app, clean_db) as served:
        yield served


async def test_idempotent_send_then_attach_and_output_by_idempotency_key(ingress):
    key = uuid.uuid4().hex
    sent = await ingress.client.post("/Waiter/wait/send", json=key, headers={"idempotency-key": "order-1"})
    invocation_id = sent.json()["invocationId"]
    by_key = "/restate/invocation/Waiter/wait/order-1"
    not_ready = await ingress.client.get(f"{by_key}/output")
    assert not_ready.status_code == 470
    assert not_ready.json()["message"] == "the invocation exists but has not completed yet"
    attaching = asyncio.ensure_future(ingress.client.get(f"{by_key}/attach"))
    awakeable_id = await held_id(ingress, key)
    assert not attaching.done()
    await ingress.client.post(f"/restate/awakeables/{awakeable_id}/resolve", json="paid")
    attached = await asyncio.wait_for(attaching, 30)
    assert (attached.status_code, attached.json()) == (200, "got paid")
    assert attached.headers["x-restate-id"] == invocation_id
    assert "idempotency-expires" in attached.headers
    output = await ingress.client.get(f"{by_key}/output")
    assert (output.status_code, output.json()) == (200, "got paid")
    for path in (f"/restate/invocation/{invocation_id}/output", f"/restate/output/{invocation_id}",
                 f"/restate/attach/{invocation_id}"):
        assert (await ingress.client.get(path)).json() == "got paid"


async def test_target_bodies_and_lookup(ingress):
    key = uuid.uuid4().hex
    sent = await ingress.client.post("/Holder/" + key + "/hold/send", json="x", headers={"idempotency-key": "k1"})
    invocation_id = sent.json()["invocationId"]
    target = {"target": "idempotentInvocation", "service": "Holder", "key": key, "handler": "hold", "idempotencyKey": "k1"}
    assert (await ingress.client.post("/restate/lookup", json=target)).json() == {"invocationId": invocation_id}
    attached = await ingress.client.post("/restate/attach", json=target)
    assert attached.status_code == 200 and attached.headers["x-restate-id"] == invocation_id
    by_id = await ingress.client.post("/restate/output", json={"target": "invocation", "invocationId": invocation_id})
    assert by_id.status_code == 200
    assert (await ingress.client.get(f"/restate/invocation/Holder/{key}/hold/k1/output")).status_code == 200


async def test_unknown_invocations_and_bad_requests(ingress):
    missing = "inv_1" + "0" * 33
    for path in (f"/restate/invocation/{missing}/attach", f"/restate/invocation/{missing}/output",
                 "/restate/invocation/Waiter/wait/nobody/output", "/restate/workflow/Nothing/x/output"):
        response = await ingress.client.get(path)
        assert (response.status_code, response.json()["message"]) == (404, "invocation not found"), path
    assert (await ingress.client.post(f"/restate/invocation/{missing}/output")).status_code == 405
    assert (await ingress.client.post("/restate/attach", content=b"{not json")).status_code == 400
    assert (await ingress.client.post("/restate/attach", json={"target": "workflow"})).status_code == 400


async def test_a_malformed_invocation_id_is_a_bad_request(ingress):
    """As Restate's ingress (and restate-pg's admin API): 400 "bad invocation id", not 404."""
    for method, path, body in (("GET", "/restate/invocation/garbage/output", None),
                               ("GET", "/restate/invocation/garbage/attach", None),
                               ("GET", "/restate/output/garbage", None), ("GET", "/restate/attach/garbage", None),
                               ("POST", "/restate/output", {"target": "invocation", "invocationId": "garbage"})):
        response = await ingress.client.request(method, path, json=body)
        assert response.status_code == 400, path
        assert response.json()["message"].startswith("bad invocation id 'garbage'"), path


async def test_a_handler_attaches_to_another_invocation(ingress):
    key = uuid.uuid4().hex
    target = (await ingress.client.post("/Waiter/wait/send", json=key)).json()["invocationId"]
    attaching = [asyncio.ensure_future(ingress.client.post("/Attacher/attach", json=target)) for _ in range(2)]
    awakeable_id = await held_id(ingress, key)
    attached = (lambda: row(ingress.engine, "SELECT count(*) FROM restate.invocation_waiter WHERE invocation_id = %s", target))
    assert await eventually(attached, (2,)) == (2,)  # both registered before the target completes
    await ingress.client.post(f"/restate/awakeables/{awakeable_id}/resolve", json="shared")
    answers = await asyncio.wait_for(asyncio.gather(*attaching), 30)
    assert [a.json() for a in answers] == ["attached: got shared"] * 2
    late = await ingress.client.post("/Attacher/attach", json=target)  # already completed: answered at once
    assert late.json() == "attached: got shared"
    missing = await ingress.client.post("/Attacher/attach", json="inv_1" + "0" * 33)
    assert missing.json() == "failed: 404 invocation not found"


async def test_calls_with_one_idempotency_key_run_once_and_share_the_result(ingress):
    assert (await ingress.client.post("/Chain/call_idempotently", json="hello")).json() == ["hello"] * 3
    async with ingress.engine.store.pool.connection() as conn:
        runs = await (await conn.execute(
            "SELECT count(*) FROM restate.invocation WHERE service = 'Chain' AND handler = 'echo'")).fetchone()
    assert runs == (1,)
