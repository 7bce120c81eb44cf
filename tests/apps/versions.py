"""One application, run by workers of two deployments (`restate-pg worker --deployment v1|v2`)."""

from __future__ import annotations

import os
from datetime import timedelta

import restate_pg as restate
from restate_pg import Context
from tests.support import ledger

upgrade = restate.Service("Upgrade")


@upgrade.handler()
async def slow(ctx: Context, tag: str) -> str:
    """A step, a durable sleep long enough to stop its worker in, and a step that says who ran it."""
    await ctx.run("before", lambda: ledger.record(tag, "before"))
    await ctx.sleep(timedelta(milliseconds=1500))
    return await ctx.run("after", lambda: (ledger.record(tag, "after"), os.environ["RESTATE_PG_DEPLOYMENT"])[1])


@upgrade.handler()
async def quick(ctx: Context) -> str:
    return os.environ["RESTATE_PG_DEPLOYMENT"]


app = restate.app([upgrade])
