"""Schedules for the cron tests: a service whose handler echoes its input, an object that counts
its ticks, and a per-second schedule declared in code (`every-second`, catch-up `all` so that a
slow machine delays ticks but loses none)."""

from __future__ import annotations

import restate_pg as restate
from restate_pg import Context, ObjectContext

ticker = restate.Service("Ticker")
tally = restate.VirtualObject("Tally")
flow = restate.Workflow("Flow")


@ticker.handler()
async def tick(ctx: Context, note: str) -> str:
    return note


@tally.handler()
async def bump(ctx: ObjectContext) -> int:
    count = (await ctx.get("count") or 0) + 1
    ctx.set("count", count)
    return count


@flow.main()
async def run(ctx: restate.WorkflowContext) -> None:
    return None


EVERY_SECOND = restate.Cron("every-second", "* * * * * *", tick, input="beat", catch_up="all")

app = restate.app([ticker, tally, flow], crons=[EVERY_SECOND])
