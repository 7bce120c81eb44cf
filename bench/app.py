"""The benchmark's services, written against the restate-sdk-compatible API."""

from datetime import timedelta

import restate_pg as restate
from restate_pg import Context, ObjectContext, ObjectSharedContext

steps = restate.Service("Bench")


@steps.handler()
async def three_steps(ctx: Context, name: str) -> str:
    a = await ctx.run("one", lambda: "a")
    b = await ctx.run("two", lambda: "b")
    c = await ctx.run("three", lambda: "c")
    return f"{name}:{a}{b}{c}"


@steps.handler()
async def one_step(ctx: Context, name: str) -> str:
    """The cheapest realistic invocation: one journaled step (`python -m bench.memory`)."""
    a = await ctx.run("one", lambda: "a")
    return f"{name}:{a}"


@steps.handler()
async def sleeper(ctx: Context, millis: int) -> None:
    await ctx.sleep(timedelta(milliseconds=millis))


counter = restate.VirtualObject("BenchCounter")


@counter.handler()
async def add(ctx: ObjectContext, n: int) -> int:
    value = (await ctx.get("value") or 0) + n
    ctx.set("value", value)
    return value


@counter.handler(kind="shared")
async def get(ctx: ObjectSharedContext) -> int:
    return await ctx.get("value") or 0


app = restate.app([steps, counter])
