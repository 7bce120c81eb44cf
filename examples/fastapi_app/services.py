"""The quickstart: a greeter service, a counter object and a payment workflow, written exactly as
for restate-sdk (the workflow is the one Restate's own documentation starts, `PaymentWorkflow`).

Run it with `restate-pg dev examples.fastapi_app.services:app`.
"""

from pydantic import BaseModel

import restate_pg as restate
from restate_pg import Context, ObjectContext, ObjectSharedContext, WorkflowContext, WorkflowSharedContext

greeter = restate.Service("MyService")


@greeter.handler()
async def greet(ctx: Context, name: str) -> str:
    return f"Hello, {name}!"


counter = restate.VirtualObject("Counter")


@counter.handler()
async def add(ctx: ObjectContext, delta: int) -> int:
    count = (await ctx.get("count") or 0) + delta
    ctx.set("count", count)
    return count


@counter.handler(kind="shared")
async def get(ctx: ObjectSharedContext) -> int:
    return await ctx.get("count") or 0


class Payment(BaseModel):
    amount: int


def reserve_funds(payment: Payment) -> str:
    """Stands in for a payment provider's call; its answer is journaled by `ctx.run`."""
    return f"reservation of {payment.amount}"


def cancel_reservation(reservation: str) -> None:
    """Stands in for releasing the reserved funds."""


def complete_payment(reservation: str) -> None:
    """Stands in for capturing the reserved funds."""


payment_workflow = restate.Workflow("PaymentWorkflow")


@payment_workflow.main()
async def run(ctx: WorkflowContext, payment: Payment) -> dict:
    # Step 1: reserve funds
    reservation = await ctx.run("reserve", lambda: reserve_funds(payment))
    # Step 2: wait for approval (a durable promise, completed by approve or reject)
    approved = await ctx.promise("approval", type_hint=bool).value()
    if not approved:
        await ctx.run("cancel", lambda: cancel_reservation(reservation))
        return {"status": "cancelled"}
    # Step 3: complete the payment
    await ctx.run("complete", lambda: complete_payment(reservation))
    return {"status": "completed"}


@payment_workflow.handler()
async def approve(ctx: WorkflowSharedContext) -> None:
    await ctx.promise("approval", type_hint=bool).resolve(True)


@payment_workflow.handler()
async def reject(ctx: WorkflowSharedContext) -> None:
    await ctx.promise("approval", type_hint=bool).resolve(False)


app = restate.app([greeter, counter, payment_workflow])
