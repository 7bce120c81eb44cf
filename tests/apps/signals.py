"""Named signals, written as for restate-sdk 1.3 (`ctx.signal`, `ctx.resolve_signal`, `ctx.reject_signal`)."""

from __future__ import annotations

from datetime import timedelta

import restate_pg as restate
from restate_pg import Context

waiter = restate.Service("SignalWaiter")
sender = restate.Service("SignalSender")


@waiter.handler()
async def wait(ctx: Context, name: str) -> str:
    return f"got {await ctx.signal(name, type_hint=str)}"


@waiter.handler()
async def gate_then_data(ctx: Context) -> str:
    """Waits for "gate" first: "data", sent before "gate", arrived before its wait started."""
    gate = await ctx.signal("gate", type_hint=str)
    data = await ctx.signal("data", type_hint=str)
    return f"{gate} {data}"


@waiter.handler()
async def race(ctx: Context) -> str:
    name, _ = await restate.select(signal=ctx.signal("go"), timeout=ctx.sleep(timedelta(hours=1)))
    return name


@waiter.handler()
async def arrival_order(ctx: Context) -> list[str]:
    """The three signals, in the order they arrived."""
    futures = {ctx.signal(name): name for name in ("a", "b", "c")}
    return [futures[done] async for done in restate.as_completed(*futures)]


@sender.handler()
async def resolve(ctx: Context, request: dict) -> None:
    ctx.resolve_signal(request["invocation_id"], request["name"], request["value"])


@sender.handler()
async def reject(ctx: Context, request: dict) -> None:
    ctx.reject_signal(request["invocation_id"], request["name"], request["message"], 451)


app = restate.app([waiter, sender])
