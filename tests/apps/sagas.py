"""A saga with compensations, and handlers for the operator's restart and retention paths.

A worker started with SAGA_HOLD_AFTER=<step> stops after the compensation of that step is
journaled and records that it is holding, so that a test can SIGKILL it in mid-compensation.
"""

from __future__ import annotations

import asyncio
import os
import typing
from datetime import timedelta

import restate_pg as restate
from restate_pg import Context, TerminalError
from tests.support import ledger

trip = restate.Service("Trip")


def reserve(tag: str, step: str) -> str:
    ledger.record(tag, f"book {step}")
    if step == "car":
        raise TerminalError("no cars left", 422)
    return f"{step} booked"


def release(tag: str, step: str) -> None:
    ledger.record(tag, f"cancel {step}")


async def _hold_if_asked(tag: str, step: str) -> None:
    if os.environ.get("SAGA_HOLD_AFTER") == step:
        ledger.record(f"hold:{tag}", f"holding after cancel {step} in {os.getpid()}")
        await asyncio.Event().wait()  # until SIGKILL


@trip.handler()
async def book(ctx: restate.Context, tag: str) -> list[str]:
    """Books three things; the third fails terminally, and what was booked is undone in reverse."""
    compensations, booked = [], []
    try:
        for step in ("flight", "hotel", "car"):
            booked.append(await ctx.run(f"book {step}", lambda step=step: reserve(tag, step)))
            compensations.append(step)
    except restate.TerminalError:
        for step in reversed(compensations):
            await ctx.run(f"cancel {step}", lambda step=step: release(tag, step))
            await _hold_if_asked(tag, step)  # for the crash test
        raise
    return booked


redo = restate.Service("Redo")


@redo.handler()
async def steps(ctx: Context, tag: str) -> typing.List[str]:
    """Two side effects with a durable sleep between them, for restart-as-new from a prefix."""
    first = await ctx.run("first", lambda: (ledger.record(tag, "first"), "one")[1])
    await ctx.sleep(timedelta(milliseconds=10))
    second = await ctx.run("second", lambda: (ledger.record(tag, "second"), "two")[1])
    return [first, second]


@redo.handler(idempotency_retention=timedelta(milliseconds=200))
async def once(ctx: Context, tag: str) -> int:
    """Counts its executions: with an idempotency key, once per key until the key expires."""
    return await ctx.run("count", lambda: (ledger.record(tag, "once"), ledger.count(tag, "once"))[1])


app = restate.app([trip, redo])
