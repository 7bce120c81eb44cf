"""Handlers that wait for a long time, for the test harness's timer helpers (tests/test_testing.py)."""

from __future__ import annotations

from datetime import timedelta

import restate_pg as restate

napper = restate.Service("Napper")


@napper.handler()
async def nap(ctx: restate.Context, name: str) -> str:
    await ctx.sleep(timedelta(hours=1))
    return f"{name} woke up"


@napper.handler()
async def two_naps(ctx: restate.Context, name: str) -> str:
    await ctx.sleep(timedelta(hours=1), name="first")
    await ctx.run("between", lambda: "awake")
    await ctx.sleep(timedelta(days=2), name="second")
    return f"{name} woke up twice"


@napper.handler()
async def wait_for_nap(ctx: restate.Context, name: str) -> str:
    return "caller: " + await ctx.service_call(nap, name)


@napper.handler()
async def race(ctx: restate.Context, name: str) -> str:
    awakeable_id, promise = ctx.awakeable(type_hint=str)
    await ctx.run("hand out", lambda: awakeable_id)
    match await restate.select(answer=promise, timeout=ctx.sleep(timedelta(minutes=30))):
        case ["answer", answer]:
            return answer
        case _:
            return f"{name} timed out"


@napper.handler()
async def refuse(ctx: restate.Context, name: str) -> str:
    raise restate.TerminalError(f"{name} refused", 422)


tally = restate.VirtualObject("Tally")


@tally.handler()
async def add(ctx: restate.ObjectContext, amount: int) -> int:
    total = (await ctx.get("total") or 0) + amount
    ctx.set("total", total)
    ctx.set("last", {"amount": amount})
    return total


app = restate.app([napper, tally])
