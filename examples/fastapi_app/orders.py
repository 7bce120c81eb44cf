"""The shop's durable code: an order workflow and a virtual object per customer.

Run workers with `restate-pg worker examples.fastapi_app.orders:app` (DATABASE_URL set), as many
as you like; or let the web app run handlers in its own process (see main.py).
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update
from sqlalchemy.orm import Session

import restate_pg as restate
from examples.fastapi_app import db
from examples.fastapi_app.models import Order

#: How long after payment an order ships (a durable timer: tests fire it at once).
SHIPPING_DELAY = timedelta(days=1)

order_workflow = restate.Workflow("OrderWorkflow")


@order_workflow.main()
async def run(ctx: restate.WorkflowContext, order_id: int) -> str:
    """Started by `POST /orders` in the transaction that inserts the order (workflow id: the order id)."""
    order = await ctx.run("load order", lambda: load_order(order_id))
    await ctx.run("charge", lambda: set_status(order_id, "paid"))
    spent = await ctx.object_call(record_order, key=order["customer_id"], arg=order["amount_cents"])
    ctx.set("customer_spent_cents", spent)
    await ctx.sleep(SHIPPING_DELAY)
    await ctx.run("ship", lambda: set_status(order_id, "shipped"))
    return "shipped"


customer = restate.VirtualObject("Customer")


@customer.handler()
async def record_order(ctx: restate.ObjectContext, amount_cents: int) -> int:
    """Count one more order of this customer (calls for one customer key run one at a time)."""
    orders = (await ctx.get("orders") or 0) + 1
    spent = (await ctx.get("spent_cents") or 0) + amount_cents
    ctx.set("orders", orders)
    ctx.set("spent_cents", spent)
    return spent


@customer.handler(kind="shared")
async def summary(ctx: restate.ObjectSharedContext) -> dict[str, int]:
    return {"orders": await ctx.get("orders") or 0, "spent_cents": await ctx.get("spent_cents") or 0}


def load_order(order_id: int) -> dict[str, object]:
    with Session(db.engine()) as session:
        order = session.get(Order, order_id)
        if order is None:
            raise restate.TerminalError(f"order {order_id} not found", 404)
        return order.as_dict()


def set_status(order_id: int, status: str) -> None:
    with Session(db.engine()) as session, session.begin():
        session.execute(update(Order).where(Order.id == order_id).values(status=status))


app = restate.app([order_workflow, customer])
