"""The shop, tested as its developers would: restate_pg.testing's harness runs the workflow and
the customer objects; the app's own routes and the mounted ingress are served over real HTTP."""

from __future__ import annotations

import typing

import httpx
import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from examples.fastapi_app import orders
from examples.fastapi_app.main import NewOrder, create_api, place_order
from examples.fastapi_app.models import Order
from restate_pg.testing import HarnessEnvironment, serve_api


class Rollback(Exception):
    pass


@pytest.fixture
async def shop(restate_harness: HarnessEnvironment, shop_db: Engine, restate_database_url: str) -> typing.AsyncIterator[httpx.AsyncClient]:
    """The shop's web app on a real port; it runs no handlers itself: the harness's worker does."""
    api = create_api(restate_database_url, run_handlers=False)
    async with serve_api(api) as base_url, httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        yield client


async def test_a_rolled_back_order_leaves_no_invocation(restate_harness: HarnessEnvironment, shop_db: Engine) -> None:
    with pytest.raises(Rollback), Session(shop_db) as session, session.begin():
        _, handle = place_order(session, NewOrder(customer_id="alice", item="book", amount_cents=1500))
        raise Rollback
    assert await restate_harness.invocation(handle.invocation_id) is None
    assert await restate_harness.query("SELECT count(*) AS n FROM sys_invocation") == [{"n": 0}]
    with Session(shop_db) as session:
        assert session.scalars(select(Order)).all() == []


async def test_a_committed_order_runs_its_workflow(restate_harness: HarnessEnvironment, shop_db: Engine) -> None:
    with Session(shop_db) as session, session.begin():
        order_id, handle = place_order(session, NewOrder(customer_id="alice", item="book", amount_cents=1500))
    # The workflow sleeps a day before shipping: run_to_completion fires that timer.
    assert await restate_harness.run_to_completion(handle.invocation_id) == "shipped"
    with Session(shop_db) as session:
        assert session.get(Order, order_id).status == "shipped"  # type: ignore[union-attr]
    steps = [(row["entry_type"], row["name"]) for row in await restate_harness.journal(handle.invocation_id)
             if row["entry_type"] in ("Command: Run", "Command: Sleep")]
    assert steps == [("Command: Run", "load order"), ("Command: Run", "charge"), ("Command: Sleep", None), ("Command: Run", "ship")]
    assert await restate_harness.state("OrderWorkflow", str(order_id)) == {"customer_spent_cents": 1500}


async def test_customers_keep_their_own_state(restate_harness: HarnessEnvironment, shop_db: Engine) -> None:
    handles = []
    for customer, cents in (("alice", 1500), ("bob", 700), ("alice", 500)):
        with Session(shop_db) as session, session.begin():
            handles.append(place_order(session, NewOrder(customer_id=customer, item="x", amount_cents=cents))[1])
    for handle in handles:
        assert await restate_harness.run_to_completion(handle.invocation_id) == "shipped"
    assert await restate_harness.state("Customer", "alice") == {"orders": 2, "spent_cents": 2000}
    assert await restate_harness.state("Customer", "bob") == {"orders": 1, "spent_cents": 700}
    assert await restate_harness.client.object_call(orders.summary, "carol") == {"orders": 0, "spent_cents": 0}


async def test_the_apps_routes(restate_harness: HarnessEnvironment, shop: httpx.AsyncClient, shop_db: Engine) -> None:
    created = await shop.post("/orders", json={"customer_id": "dave", "item": "lamp", "amount_cents": 4200})
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["invocation_id"].startswith("inv_")
    assert await restate_harness.run_to_completion(body["invocation_id"]) == "shipped"

    order = await shop.get(f"/orders/{body['order_id']}")
    assert order.json() == {"id": body["order_id"], "customer_id": "dave", "item": "lamp", "amount_cents": 4200, "status": "shipped"}
    assert (await shop.get("/customers/dave")).json() == {"orders": 1, "spent_cents": 4200}

    missing = await shop.get("/orders/999")
    assert (missing.status_code, missing.json()) == (404, {"message": "order 999 not found"})
    bad = await shop.post("/orders", json={"customer_id": "dave", "item": "lamp", "amount_cents": 0})
    assert bad.status_code == 400
    assert bad.json() == {"message": "amount_cents: Input should be greater than 0"}
    with Session(shop_db) as session:
        assert len(session.scalars(select(Order)).all()) == 1  # the refused order was not inserted


async def test_the_mounted_ingress(restate_harness: HarnessEnvironment, shop: httpx.AsyncClient) -> None:
    added = await shop.post("/ingress/Customer/erin/record_order", json=300)
    assert (added.status_code, added.json()) == (200, 300)
    assert (await shop.post("/ingress/Customer/erin/summary")).json() == {"orders": 1, "spent_cents": 300}
    sent = await shop.post("/ingress/OrderWorkflow/12345/run/send", json=12345)
    assert sent.status_code == 202
    # No order 12345: the workflow fails terminally, as its first step says.
    output = await shop.get("/ingress/restate/workflow/OrderWorkflow/12345/attach")
    assert (output.status_code, output.json()["message"]) == (404, "order 12345 not found")
    unknown = await shop.post("/ingress/Nope/handler", json=1)
    assert unknown.status_code == 404 and "message" in unknown.json()
