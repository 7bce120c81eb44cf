"""Handlers the ingress tests need beyond kitchen's: counted side effects and a workflow."""

from __future__ import annotations

import time
import typing
from datetime import timedelta

import restate_pg as restate
from restate_pg import Context, ObjectSharedContext, TerminalError, WorkflowContext, WorkflowSharedContext
from tests.apps import kitchen
from tests.support import ledger

effects = restate.Service("Effects")


@effects.handler()
async def once(ctx: Context, tag: str) -> typing.Dict[str, typing.Any]:
    """One side effect per execution; the journaled stamp would differ if it ran twice."""
    stamp = await ctx.run("effect", lambda: (ledger.record(tag, "ran"), time.time())[1])
    return {"tag": tag, "stamp": stamp}


@effects.handler()
async def slow_once(ctx: Context, tag: str) -> typing.Dict[str, typing.Any]:
    """Like `once`, but stays running a while: duplicates arriving meanwhile must attach to it."""
    stamp = await ctx.run("effect", lambda: (ledger.record(tag, "ran"), time.time())[1])
    await ctx.sleep(timedelta(milliseconds=400))
    return {"tag": tag, "stamp": stamp}


@effects.handler()
async def refuse(ctx: Context, tag: str) -> str:
    """Fails terminally with TerminalError's default status code."""
    await ctx.run("effect", lambda: ledger.record(tag, "ran"))
    raise TerminalError(f"refused {tag}")


@effects.handler()
async def echo(ctx: Context, value: typing.Any) -> typing.Any:
    return value


signup = restate.Workflow("Signup")


@signup.main()
async def run(ctx: WorkflowContext, name: str) -> str:
    await ctx.run("effect", lambda: ledger.record(f"signup:{ctx.key()}", "run"))
    return f"welcome {name}"


@signup.handler()
async def whoami(ctx: WorkflowSharedContext) -> str:
    return ctx.key()


inspect = restate.VirtualObject("Inspect")


@inspect.handler(kind="shared")
async def request(ctx: ObjectSharedContext) -> typing.Dict[str, typing.Any]:
    """What a keyed handler is told about its request."""
    return {"key": ctx.key(), "id": ctx.request().id, "headers": ctx.request().headers}


app = restate.app([kitchen.steps, kitchen.counter, effects, signup, inspect])
