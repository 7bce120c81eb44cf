"""A handler that holds its worker's slot until the test opens a gate: its step runs in the
test's own event loop (the engine of `tests.support.server.serve`), busy rather than waiting."""

from __future__ import annotations

import asyncio

import restate_pg as restate
from restate_pg import Context

#: Set when a `hold` step has started; the gate opens with `gate.set()`. New per test: `reset()`.
started = asyncio.Event()
gate = asyncio.Event()

gated = restate.Service("Gated")


def reset() -> None:
    global started, gate
    started, gate = asyncio.Event(), asyncio.Event()


@gated.handler()
async def hold(ctx: Context) -> str:
    async def until_open() -> str:
        started.set()
        await gate.wait()
        return "held"

    return await ctx.run("hold", until_open)


@gated.handler()
async def quick(ctx: Context, tag: str) -> str:
    return tag


app = restate.app([gated])
