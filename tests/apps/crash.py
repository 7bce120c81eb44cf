"""A handler with several journaled steps that a test can freeze at any journal position.

A worker started with CRASH_HOLD_AT=<position> stops at that position (after the step's journal
entry is durable) and records that it is holding, so that the test can SIGKILL it there.
"""

from __future__ import annotations

import asyncio
import os
import time
import typing

import restate_pg as restate
from restate_pg import ObjectContext, ObjectSharedContext
from tests.support import ledger

STEPS = 4

journey = restate.VirtualObject("Journey")


async def _hold_if_asked(key: str, position: int) -> None:
    if os.environ.get("CRASH_HOLD_AT") == str(position):
        ledger.record(f"hold:{key}", f"holding at {position} in {os.getpid()}")
        await asyncio.Event().wait()  # until SIGKILL


@journey.handler()
async def walk(ctx: ObjectContext, steps: int = STEPS) -> typing.List[str]:
    key = ctx.key()
    results = []
    for i in range(steps):
        result = await ctx.run(f"step{i}", lambda i=i: (ledger.record(key, f"step{i}"), f"{key}:{i}")[1])
        results.append(result)
        ctx.set("progress", i)
        await _hold_if_asked(key, i)
    ctx.set("done", results)
    return results


@journey.handler(kind="shared")
async def state(ctx: ObjectSharedContext) -> typing.Dict[str, typing.Any]:
    return {"progress": await ctx.get("progress"), "done": await ctx.get("done")}


@journey.handler()
async def stall(ctx: ObjectContext) -> int:
    """Spends a while inside a ctx.run on a worker started with STALL=1, then writes state."""

    def slow() -> int:
        ledger.record(ctx.key(), f"slow by {os.getpid()}")
        if os.environ.get("STALL") == "1":
            time.sleep(4)
        return os.getpid()

    writer = await ctx.run("slow", slow)
    ctx.set("writer", writer)
    await ctx.run("after", lambda: ledger.record(ctx.key(), f"after by {os.getpid()}"))
    return writer


@journey.handler(kind="shared")
async def writer(ctx: ObjectSharedContext) -> typing.Optional[int]:
    return await ctx.get("writer")


racer = restate.VirtualObject("Racer")


@racer.handler()
async def bump(ctx: ObjectContext, nap_ms: int) -> int:
    """Records entry and exit around a possibly suspending sleep; counts the calls."""
    await ctx.run("enter", lambda: ledger.record(f"race:{ctx.key()}", "enter"))
    if nap_ms:
        await ctx.sleep(__import__("datetime").timedelta(milliseconds=nap_ms))
    count = (await ctx.get("count") or 0) + 1
    ctx.set("count", count)
    await ctx.run("exit", lambda: ledger.record(f"race:{ctx.key()}", "exit"))
    return count


@racer.handler(kind="shared")
async def count(ctx: ObjectSharedContext) -> int:
    return await ctx.get("count") or 0


app = restate.app([journey, racer])
