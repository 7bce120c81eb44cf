"""The application tests/test_upgrade.py leaves in flight under restate-pg 0.1.0 and finishes under
the current code, so it is written against the API both versions have (nothing newer than 0.1.0).

Each in-flight invocation first records, with `ctx.run`, the process it started in: after the
upgrade its output still names the old worker's process only if the new code replayed the journal
0.1.0 wrote instead of running the handler again.
"""

from __future__ import annotations

import os
import typing
from datetime import timedelta

import restate_pg as restate

napper = restate.Service("UpgradeNapper")
locker = restate.VirtualObject("UpgradeLocker")


@napper.handler()
async def nap(ctx: restate.Context, name: str) -> str:
    """Sleeps an hour: left sleeping (suspended on its timer) by 0.1.0."""
    pid = await ctx.run("pid", os.getpid)
    await ctx.sleep(timedelta(hours=1))
    return f"{name} woke up, started in {pid}"


@napper.handler()
async def relay(ctx: restate.Context, name: str) -> str:
    """Waits for a call to `nap`: left suspended on a call result by 0.1.0."""
    pid = await ctx.run("pid", os.getpid)
    return f"relayed by {pid}: " + await ctx.service_call(nap, name)


@locker.handler()
async def hold(ctx: restate.ObjectContext, name: str) -> str:
    """Holds the object key until an awakeable is resolved: left suspended by 0.1.0, with the
    awakeable's id in the object's state for whoever resolves it."""
    pid = await ctx.run("pid", os.getpid)
    await _log(ctx, f"{name} holds")
    awakeable_id, promise = ctx.awakeable(type_hint=str)
    ctx.set("awakeable", awakeable_id)
    answer = await promise
    await _log(ctx, f"{name} got {answer}")
    return f"{name} got {answer}, started in {pid}"


@locker.handler()
async def add(ctx: restate.ObjectContext, amount: int) -> typing.Dict[str, typing.Any]:
    """Adds to the object's total: the second call on a held key waits in its inbox."""
    total = (await ctx.get("total") or 0) + amount
    ctx.set("total", total)
    return {"total": total, "log": await _log(ctx, f"added {amount}")}


async def _log(ctx: restate.ObjectContext, line: str) -> typing.List[str]:
    log = (await ctx.get("log") or []) + [line]
    ctx.set("log", log)
    return log


app = restate.app([napper, locker])
