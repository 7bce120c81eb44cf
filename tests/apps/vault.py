"""A virtual object whose balance goes wrong if two of its exclusive handlers ever run at once.

`deposit` reads the balance, takes a journaled step, then writes balance + amount: two deposits of
one key running side by side both read the same balance, and one update is lost. `hold` keeps the
key until its awakeable is resolved, so a test can queue work behind a busy key. `flaky` fails its
first attempt, for the retry path.
"""

from __future__ import annotations

import restate_pg as restate
from restate_pg import ObjectContext, RetryableError, TerminalError

vault = restate.VirtualObject("Vault")


@vault.handler()
async def deposit(ctx: ObjectContext, amount: int) -> int:
    balance = await ctx.get("balance", type_hint=int) or 0
    await ctx.run("audit", lambda: None)
    ctx.set("balance", balance + amount)
    return balance + amount


@vault.handler()
async def hold(ctx: ObjectContext) -> str:
    """Holds the key until a test resolves the awakeable it journals."""
    _, resolved = ctx.awakeable(type_hint=str)
    return await resolved


@vault.handler()
async def transfer(ctx: ObjectContext, to: str) -> int:
    """Deposits 1 into another key through a call, and returns what that deposit returned."""
    return await ctx.object_call(deposit, key=to, arg=1)


@vault.handler()
async def unstorable(ctx: ObjectContext, what: str) -> str:
    """Asks for something PostgreSQL cannot store: a NUL in a state name, a call's key, a
    terminal error's message, or the message of a terminal error raised inside a ctx.run."""
    if what == "state name":
        ctx.set("bal\x00ance", 1)
    elif what == "call key":
        await ctx.object_call(deposit, key="k\x00", arg=1)
    elif what == "error message":
        raise TerminalError("refused: a\x00b", 422)
    elif what == "run error":
        def fail() -> None:
            raise TerminalError("step refused: a\x00b", 409)

        await ctx.run("fails", fail)
    return "stored"


#: Invocations whose first attempt has failed (tests run the worker in their own process).
_failed_once: set[str] = set()


@vault.handler()
async def flaky(ctx: ObjectContext) -> str:
    """Fails its first attempt with a retryable error, then succeeds."""
    invocation_id = ctx.request().id
    if invocation_id not in _failed_once:
        _failed_once.add(invocation_id)
        raise RetryableError("first attempt fails on purpose")
    return "second attempt"


app = restate.app([vault])
