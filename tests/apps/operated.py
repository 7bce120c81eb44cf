"""Services for the operator UI's tests: a trip that sleeps, calls another service, runs a step
and waits for an awakeable resolved from outside; a counter with state; a job that waits until
cancelled."""

from __future__ import annotations

from datetime import timedelta

import restate_pg as restate
from restate_pg import Context, ObjectContext, ObjectSharedContext

greeter = restate.Service("UiGreeter")
trip = restate.Service("UiTrip")
counter = restate.VirtualObject("UiCounter")
job = restate.Service("UiJob")

#: Awakeable ids handed out by `plan`, by trip name (the test resolves them over the ingress).
handed_out: dict[str, str] = {}


@greeter.handler()
async def greet(ctx: Context, name: str) -> str:
    return f"Hello, {name}!"


@trip.handler()
async def plan(ctx: Context, name: str) -> str:
    await ctx.sleep(timedelta(milliseconds=50))
    greeting = await ctx.service_call(greet, arg=name)
    awakeable_id, approval = ctx.awakeable(type_hint=str)
    await ctx.run("hand out", lambda: handed_out.setdefault(name, awakeable_id))
    return f"{greeting} {await approval}"


@counter.handler()
async def add(ctx: ObjectContext, delta: int) -> int:
    count = (await ctx.get("count") or 0) + delta
    ctx.set("count", count)
    return count


@counter.handler(kind="shared")
async def get(ctx: ObjectSharedContext) -> int:
    return await ctx.get("count") or 0


@job.handler()
async def wait(ctx: Context) -> None:
    """Runs until cancelled: waits on an awakeable nobody resolves."""
    _, never = ctx.awakeable()
    await never


app = restate.app([greeter, trip, counter, job])
