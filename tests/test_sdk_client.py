"""restate-sdk's own client (`restate.create_client`) against restate-pg's ingress.

The client finds a handler's name, serde and content type on a restate-sdk handler object, so the
caller declares the services it calls with restate-sdk (the server runs restate-pg's), as a
client of a Restate server does with the service definitions it imports.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
import restate  # restate-sdk: a test dependency, beside restate_pg

from tests.apps import clients
from tests.support.polling import eventually, row
from tests.support.server import serve

orders = restate.Service("Orders")


@orders.handler()
async def confirm(ctx: restate.Context, order_id: int) -> str:
    raise AssertionError("declared for the client; restate-pg runs tests.apps.clients")


payment = restate.Workflow("PaymentWorkflow")


@payment.main()
async def run(ctx: restate.WorkflowContext, order: dict) -> str:
    raise AssertionError("declared for the client")


@payment.handler()
async def approve(ctx: restate.WorkflowSharedContext, who: str) -> None:
    raise AssertionError("declared for the client")


@payment.handler()
async def status(ctx: restate.WorkflowSharedContext) -> str | None:
    raise AssertionError("declared for the client")


@pytest.fixture
async def ingress(clean_db):
    async with serve(clients.app, clean_db) as served:
        yield served


async def test_call_and_send(ingress):
    async with restate.create_client(ingress.base_url) as client:
        assert await client.service_call(confirm, 1) == "order 1 confirmed"
        sent = await client.service_send(confirm, 2)
        assert sent.invocation_id.startswith("inv_1")
        attached = await ingress.client.get(f"/restate/invocation/{sent.invocation_id}/attach")
        assert attached.json() == "order 2 confirmed"
        # bytes in, bytes out; as with Restate, a body needs its content type
        raw = await client.generic_call("Orders", "confirm", b"3", headers={"content-type": "application/json"})
        assert raw == b'"order 3 confirmed"'


async def test_a_delayed_send_in_bare_milliseconds(ingress):
    """The client writes `?delay=<integer milliseconds>`, without a unit."""
    async with restate.create_client(ingress.base_url) as client:
        sent = await client.service_send(confirm, 4, send_delay=timedelta(milliseconds=1500))
    not_yet = await ingress.client.get(f"/restate/invocation/{sent.invocation_id}/output")
    assert not_yet.status_code == 470
    attached = await ingress.client.get(f"/restate/invocation/{sent.invocation_id}/attach")
    assert attached.json() == "order 4 confirmed"


async def test_an_idempotency_key_runs_once(ingress):
    key = uuid.uuid4().hex
    async with restate.create_client(ingress.base_url) as client:
        first = await client.service_send(confirm, 5, idempotency_key=key)
        again = await client.service_send(confirm, 5, idempotency_key=key)
        assert first.invocation_id == again.invocation_id
        assert await client.service_call(confirm, 5, idempotency_key=key) == "order 5 confirmed"
    assert await row(ingress.engine, "SELECT count(*) FROM restate.invocation WHERE idempotency_key = %s", key) == (1,)


async def test_a_workflow_submitted_then_attached(ingress):
    workflow_id = uuid.uuid4().hex
    async with restate.create_client(ingress.base_url) as client:
        submitted = await client.workflow_send(run, workflow_id, {"amount": 7})
        again = await client.workflow_send(run, workflow_id, {"amount": 7})
        assert again.invocation_id == submitted.invocation_id

        async def waiting() -> str | None:
            return await client.workflow_call(status, workflow_id, None)

        assert await eventually(waiting, "waiting for approval") == "waiting for approval"
        await client.workflow_call(approve, workflow_id, "ana")
        with pytest.raises(restate.HttpError) as refused:  # a second run call is refused, as by Restate
            await client.workflow_call(run, workflow_id, {"amount": 7})
        assert refused.value.status_code == 409
    attached = await ingress.client.get(f"/restate/workflow/PaymentWorkflow/{workflow_id}/attach")
    assert attached.json() == "charged 7, approved by ana"
