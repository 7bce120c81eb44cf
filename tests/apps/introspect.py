"""Handlers that leave something to see in each introspection view."""

from __future__ import annotations

from datetime import timedelta

import restate_pg as restate
from restate_pg import Context, InvocationRetryPolicy, ObjectContext, WorkflowContext, WorkflowSharedContext
from restate_pg.serde import BytesSerde

shop = restate.Service("Shop")
inventory = restate.VirtualObject("Inventory")
signup = restate.Workflow("Signup")


@shop.handler()
async def order(ctx: Context, item: str) -> str:
    """One of each journal entry an operator looks at: a run, a sleep, a call and a send."""
    receipt = await ctx.run("charge", lambda: f"charged for {item}")
    await ctx.sleep(timedelta(milliseconds=10))
    left = await ctx.object_call(reserve, key=item, arg=1)
    ctx.object_send(reserve, key=item, arg=0)
    return f"{receipt}, {left} left"


@shop.handler(invocation_retry_policy=InvocationRetryPolicy(max_attempts=1, on_max_attempts="pause"))
async def broken(ctx: Context) -> None:
    raise RuntimeError("the shop is closed")


@shop.handler(invocation_retry_policy=InvocationRetryPolicy(initial_interval=timedelta(hours=1)))
async def flaky(ctx: Context) -> None:
    raise ValueError("try again later")


@inventory.handler()
async def reserve(ctx: ObjectContext, n: int) -> int:
    stock = await ctx.get("stock")
    stock = 10 if stock is None else stock
    ctx.set("stock", stock - n)
    ctx.set("photo", b"\x89PNG\xff\x00", serde=BytesSerde())
    return stock - n


@shop.handler(inactivity_timeout=timedelta(milliseconds=50))
async def nap(ctx: Context, millis: int) -> str:
    """Sleeps suspended: no worker holds it while it waits."""
    await ctx.sleep(timedelta(milliseconds=millis))
    return "rested"


@inventory.handler(inactivity_timeout=timedelta(hours=1))
async def hold(ctx: ObjectContext, millis: int) -> str:
    """Keeps the key (and its lock) while it sleeps in memory, running, so that exclusive calls queue."""
    await ctx.sleep(timedelta(milliseconds=millis))
    return "released"


@signup.main()
async def run(ctx: WorkflowContext, email: str) -> str:
    code = await ctx.promise("confirmation").value()
    return f"{email} confirmed with {code}"


@signup.handler()
async def confirm(ctx: WorkflowSharedContext, code: str) -> None:
    await ctx.promise("confirmation").resolve(code)


app = restate.app([shop, inventory, signup])
