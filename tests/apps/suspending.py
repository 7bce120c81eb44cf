"""Handlers whose awaits are not complete when awaited, for always-suspending mode
(inactivity timeout 0) and for combinators whose completions arrive while they are suspended.

Each handler returns how many attempts entered it in this process (not durable on purpose: code
outside journaled steps runs again on every attempt), so a test sees whether it suspended.
"""

from __future__ import annotations

import collections
from datetime import timedelta

import restate_pg as restate
from restate_pg import Context

suspending = restate.Service("Suspending")
eager = restate.Service("Eager", inactivity_timeout=timedelta(0))

#: Attempts that entered each handler, by argument.
entered: collections.Counter[str] = collections.Counter()


@suspending.handler()
async def nap(ctx: Context, tag: str) -> int:
    entered[tag] += 1
    await ctx.sleep(timedelta(milliseconds=100))
    await ctx.run("after", lambda: "done")  # a run awaited while it runs does not suspend
    return entered[tag]


@suspending.handler()
async def echo(ctx: Context, value: str) -> str:
    return value


@suspending.handler()
async def call_echo(ctx: Context, tag: str) -> int:
    entered[tag] += 1
    assert await ctx.service_call(echo, arg=tag) == tag
    return entered[tag]


@eager.handler()
async def eager_nap(ctx: Context, tag: str) -> int:
    entered[tag] += 1
    await ctx.sleep(timedelta(milliseconds=100))
    return entered[tag]


@suspending.handler(inactivity_timeout=timedelta(0))
async def eager_handler_nap(ctx: Context, tag: str) -> int:
    entered[tag] += 1
    await ctx.sleep(timedelta(milliseconds=100))
    return entered[tag]


@suspending.handler()
async def timers_in_completion_order(ctx: Context) -> list[int]:
    """Three sleeps given in one order, firing in another: as_completed follows the firing."""
    sleeps = {ms: ctx.sleep(timedelta(milliseconds=ms)) for ms in (900, 300, 600)}
    names = {id(future): ms for ms, future in sleeps.items()}
    return [names[id(future)] async for future in restate.as_completed(*sleeps.values())]


@suspending.handler()
async def call_or_sleep(ctx: Context) -> list[list[str]]:
    """wait_completed over a quick call and a long sleep: only the call is done."""
    call = ctx.service_call(echo, arg="quick")
    sleep = ctx.sleep(timedelta(seconds=30))
    done, pending = await restate.wait_completed(call, sleep)
    label = {id(call): "call", id(sleep): "sleep"}
    return [[label[id(f)] for f in done], [label[id(f)] for f in pending]]


app = restate.app([suspending, eager])
