"""Workflows: run once per id, durable promises resolved by shared handlers, attach and output."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from tests.apps import workflows
from tests.support.polling import eventually, row
from tests.support.server import SUSPENDING_IDS, serve, suspending_modes


@pytest.fixture(params=suspending_modes(0.3), ids=SUSPENDING_IDS)
async def ingress(clean_db, request):
    async with serve(workflows.app, clean_db, inactivity_timeout=request.param) as served:
        yield served


def order_id() -> str:
    return f"order-{uuid.uuid4().hex[:8]}"


async def wait_for_status(ingress, order: str, expected: str) -> None:
    async def status():
        response = await ingress.client.post(f"/PaymentWorkflow/{order}/status")
        return response.json() if response.content else None

    await eventually(status, expected, what=f"{order} to reach {expected!r}")


async def test_the_payment_workflow_waits_for_approval(ingress):
    order = order_id()
    running = asyncio.ensure_future(ingress.client.post(
        f"/PaymentWorkflow/{order}/run", json={"amount": 100}, headers={"content-type": "application/json"}))
    await wait_for_status(ingress, order, "waiting for approval")
    assert (await ingress.client.post(f"/PaymentWorkflow/{order}/peek_approval")).json() == "nobody yet"
    assert not running.done()
    assert (await ingress.client.post(f"/PaymentWorkflow/{order}/approve", json="alice")).status_code == 200
    response = await asyncio.wait_for(running, 30)
    assert (response.status_code, response.json()) == (200, "charged 100, approved by alice")
    assert (await ingress.client.post(f"/PaymentWorkflow/{order}/peek_approval")).json() == "alice"
    assert (await ingress.client.get(f"/restate/workflow/PaymentWorkflow/{order}/output")).json() == (
        "charged 100, approved by alice")


async def test_rejection_cancels_the_payment(ingress):
    order = order_id()
    sent = await ingress.client.post(f"/PaymentWorkflow/{order}/run/send", json={"amount": 7})
    assert sent.json()["status"] == "Accepted"
    await wait_for_status(ingress, order, "waiting for approval")
    assert (await ingress.client.post(f"/PaymentWorkflow/{order}/reject", json="card declined")).status_code == 200
    attached = await ingress.client.get(f"/restate/workflow/PaymentWorkflow/{order}/attach")
    assert attached.json() == "cancelled: card declined"
    assert (await ingress.client.post(f"/PaymentWorkflow/{order}/status")).json() == "cancelled"


async def test_a_promise_resolved_before_run_awaits_it_is_delivered(ingress):
    order = order_id()
    assert (await ingress.client.post(f"/PaymentWorkflow/{order}/approve", json="early bird")).status_code == 200
    response = await ingress.client.post(f"/PaymentWorkflow/{order}/run", json={"amount": 5})
    assert response.json() == "charged 5, approved by early bird"


async def test_a_promise_completes_once(ingress):
    order = order_id()
    assert (await ingress.client.post(f"/PaymentWorkflow/{order}/approve", json="first")).status_code == 200
    again = await ingress.client.post(f"/PaymentWorkflow/{order}/approve", json="second")
    assert (again.status_code, again.json()["message"]) == (409, "promise was already completed")
    rejected = await ingress.client.post(f"/PaymentWorkflow/{order}/reject", json="too late")
    assert rejected.status_code == 409
    assert (await ingress.client.post(f"/PaymentWorkflow/{order}/run", json={"amount": 1})).json() == (
        "charged 1, approved by first")


async def test_run_executes_once_per_workflow_id(ingress):
    order = order_id()
    first = await ingress.client.post(f"/PaymentWorkflow/{order}/run/send", json={"amount": 3})
    second = await ingress.client.post(f"/PaymentWorkflow/{order}/run/send", json={"amount": 4})
    assert second.json() == {"invocationId": first.json()["invocationId"], "status": "PreviouslyAccepted"}
    called = await ingress.client.post(f"/PaymentWorkflow/{order}/run", json={"amount": 5})
    assert called.status_code == 409
    output = await ingress.client.get(f"/restate/workflow/PaymentWorkflow/{order}/output")
    assert output.status_code == 470
    await ingress.client.post(f"/PaymentWorkflow/{order}/approve", json="bob")
    attached = await ingress.client.get(f"/restate/workflow/PaymentWorkflow/{order}/attach")
    assert attached.json() == "charged 3, approved by bob"


async def test_concurrent_submissions_of_one_workflow_id_run_it_once(ingress):
    order = order_id()
    answers = await asyncio.gather(*(
        ingress.client.post(f"/PaymentWorkflow/{order}/run/send", json={"amount": n}) for n in range(8)))
    ids = {a.json()["invocationId"] for a in answers}
    assert len(ids) == 1
    assert sorted(a.json()["status"] for a in answers) == ["Accepted"] + ["PreviouslyAccepted"] * 7
    await ingress.client.post(f"/PaymentWorkflow/{order}/approve", json="carol")
    result = (await ingress.client.get(f"/restate/workflow/PaymentWorkflow/{order}/attach")).json()
    assert result.startswith("charged ") and result.endswith(", approved by carol")
    async with ingress.engine.store.pool.connection() as conn:
        runs = await (await conn.execute(
            "SELECT count(*) FROM restate.journal WHERE invocation_id = %s AND entry_type = 'Run'"
            " AND name = 'reserve funds'", (ids.pop(),))).fetchone()
    assert runs == (1,)


async def test_a_suspended_run_is_woken_by_the_promise(ingress):
    order = order_id()
    invocation_id = (await ingress.client.post(f"/PaymentWorkflow/{order}/run/send", json={"amount": 9})).json()[
        "invocationId"]
    status = (lambda: row(ingress.engine, "SELECT status FROM restate.task WHERE invocation_id = %s", invocation_id))
    assert await eventually(status, ("suspended",)) == ("suspended",)
    await ingress.client.post(f"/PaymentWorkflow/{order}/approve", json="dave")
    attached = await asyncio.wait_for(ingress.client.get(f"/restate/workflow/PaymentWorkflow/{order}/attach"), 30)
    assert attached.json() == "charged 9, approved by dave"


async def test_a_handler_calling_run_again_gets_409(ingress):
    answer = await ingress.client.post("/Starter/start_twice", json=order_id())
    assert answer.json() == ["charged 2, approved by eve", "409 the workflow method was already invoked"]


async def test_after_its_retention_a_workflow_id_starts_afresh(clean_db):
    async with serve(workflows.app, clean_db, retention_interval=0.1) as ingress:
        workflow_id = order_id()
        first = await ingress.client.post(f"/Brief/{workflow_id}/brief_run", json="hello")
        assert first.json() == "hello (run 1 of this id)"
        left = await eventually(lambda: row(  # swept once its 200 ms retention passed
            ingress.engine,
            "SELECT (SELECT count(*) FROM restate.invocation WHERE service = 'Brief')"
            " + (SELECT count(*) FROM restate.state_entry WHERE service = 'Brief')"
            " + (SELECT count(*) FROM restate.promise WHERE service = 'Brief')"
            " + (SELECT count(*) FROM restate.journal j WHERE j.invocation_id = %s)",
            first.headers["x-restate-id"]), (0,))
        assert left == (0,)
        assert (await ingress.client.get(f"/restate/workflow/Brief/{workflow_id}/output")).status_code == 404
        again = await ingress.client.post(f"/Brief/{workflow_id}/brief_run/send", json="again")
        assert again.json()["status"] == "Accepted"
        attached = await ingress.client.get(f"/restate/workflow/Brief/{workflow_id}/attach")
        assert attached.json() == "again (run 1 of this id)"
