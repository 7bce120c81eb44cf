"""The benchmark's services written with the real restate-sdk, for the Restate peer: the same
handlers as bench/app.py line for line (on purpose: restate-pg's API is the SDK's), with
`ctx.run_typed`, the SDK 1.x spelling of restate-pg's `ctx.run`.

Runs in the peer venv (see bench/peers/env.py), served by hypercorn (HTTP/1.1 and h2c), then
registered with restate-server's admin API (bench/peers/restate_system.py does both):
    python -m hypercorn --bind 127.0.0.1:PORT --worker-class uvloop bench.peers.restate_app:app
"""

from datetime import timedelta

import restate
from restate import Context, ObjectContext, ObjectSharedContext

steps = restate.Service("Bench")


@steps.handler()
async def three_steps(ctx: Context, name: str) -> str:
    a = await ctx.run_typed("one", lambda: "a")
    b = await ctx.run_typed("two", lambda: "b")
    c = await ctx.run_typed("three", lambda: "c")
    return f"{name}:{a}{b}{c}"


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
