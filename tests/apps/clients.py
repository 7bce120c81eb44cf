"""Services the client and transactional-enqueue tests start from outside handlers: the
awakeable and workflow services of the other apps, and an order service of a web app."""

from __future__ import annotations

import restate_pg as restate
from restate_pg import Context
from tests.apps import awakeables, workflows

orders = restate.Service("Orders")


@orders.handler()
async def confirm(ctx: Context, order_id: int) -> str:
    return await ctx.run("confirm", lambda: f"order {order_id} confirmed")


# what the README's examples import from "myapp.services"
hold = awakeables.hold
run = workflows.run
app = restate.app([orders, awakeables.waiter, awakeables.holder, awakeables.chain, workflows.payment])
