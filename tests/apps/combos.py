"""Handlers combining durable futures, written exactly as for restate-sdk."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import restate_pg as restate
from restate_pg import Context, TerminalError

combos = restate.Service("Combos")

#: How many attempts ran a handler's body in this process (code outside journaled steps reruns).
entered: dict[str, int] = {}


def _after(seconds: float, value: str):  # an async action that takes a while
    async def action() -> str:
        await asyncio.sleep(seconds)
        return value

    return action


@combos.handler()
async def first_wins(ctx: Context) -> list:
    return await restate.select(slow=ctx.run("slow", _after(0.6, "slow")), fast=ctx.run("fast", _after(0.05, "fast")))


@combos.handler()
async def call_with_timeout(ctx: Context, millis: int) -> str:
    call = ctx.service_call(nap, arg=millis)
    # a second: a call of 50 ms beats it even on a loaded machine, one of 3 s does not
    match await restate.select(result=call, timeout=ctx.sleep(timedelta(seconds=1))):
        case ["result", value]:
            return f"result {value}"
        case ["timeout", _]:
            return "timed out"
    return "unreachable"


@combos.handler()
async def nap(ctx: Context, millis: int) -> str:
    await ctx.sleep(timedelta(milliseconds=millis))
    return "rested"


@combos.handler()
async def fail(ctx: Context) -> str:
    raise TerminalError("no luck", 418)


@combos.handler()
async def gather_all(ctx: Context) -> list:
    futures = [ctx.run("a", _after(0.2, "a")), ctx.service_call(fail, arg=None), ctx.run("c", _after(0.05, "c"))]
    done = await restate.gather(*futures)
    out = []
    for future in done:
        try:
            out.append(await future)
        except TerminalError as exc:
            out.append(f"{exc.status_code}: {exc.message}")
    return out


@combos.handler()
async def completion_order(ctx: Context) -> list:
    futures = {
        ctx.run("three", _after(0.3, "three")): "three",
        ctx.run("one", _after(0.05, "one")): "one",
        ctx.run("two", _after(0.15, "two")): "two",
    }
    return [await f async for f in restate.as_completed(*futures)]


@combos.handler()
async def already_completed(ctx: Context) -> list:
    done = ctx.run("done", lambda: "done")
    await done
    completed, pending = await restate.wait_completed(ctx.sleep(timedelta(hours=1)), done)
    return [len(completed), len(pending), await completed[0]]


# Suspends after the select (inactivity 0), so the winner is decided again by a replay that finds
# both completions recorded: it must pick the one that completed first, not the one listed first.
@combos.handler(inactivity_timeout=timedelta(0))
async def winner_after_replay(ctx: Context) -> list:
    entered["winner_after_replay"] = entered.get("winner_after_replay", 0) + 1
    late, early = ctx.run("late", _after(0.4, "late")), ctx.run("early", _after(0.05, "early"))
    winner = await restate.select(late=late, early=early)
    late_too = await restate.gather(late)  # both completions are journaled before the suspension
    # suspends (a second: longer than writing the sleep's entry takes on a loaded machine, after
    # which a sleep already over would not suspend): the rest runs in a replaying attempt
    await ctx.sleep(timedelta(seconds=1))
    return [*winner, await late_too[0]]


@combos.handler()
async def foreign(ctx: Context) -> str:
    try:
        await restate.select(x="not a future")  # type: ignore[arg-type]
    except TerminalError as exc:
        return exc.message
    return "accepted"


app = restate.app([combos])
