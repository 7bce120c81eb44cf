"""Awakeables, written exactly as for restate-sdk (Restate's AwakeableHolder test service)."""

from __future__ import annotations

from datetime import timedelta

import restate_pg as restate
from restate_pg import Context, ObjectContext, ObjectSharedContext, TerminalError

waiter = restate.Service("Waiter")
holder = restate.VirtualObject("Holder")


@holder.handler()
async def hold(ctx: ObjectContext, awakeable_id: str) -> None:
    ctx.set("id", awakeable_id)


@holder.handler(kind="shared")
async def held(ctx: ObjectSharedContext) -> str | None:
    return await ctx.get("id")


@holder.handler()
async def block(ctx: ObjectContext) -> None:
    """Holds the object key until killed: waits on an awakeable nobody knows."""
    _, never = ctx.awakeable()
    await never


@holder.handler()
async def unlock(ctx: ObjectContext, payload: str) -> None:
    awakeable_id = await ctx.get("id")
    if awakeable_id is None:
        raise TerminalError("No awakeable is registered")
    ctx.resolve_awakeable(awakeable_id, payload)


@holder.handler()
async def refuse(ctx: ObjectContext, reason: str) -> None:
    awakeable_id = await ctx.get("id")
    if awakeable_id is None:
        raise TerminalError("No awakeable is registered")
    ctx.reject_awakeable(awakeable_id, reason, 451)


@waiter.handler()
async def wait(ctx: Context, key: str) -> str:
    awakeable_id, promise = ctx.awakeable(type_hint=str)
    ctx.object_send(hold, key=key, arg=awakeable_id)
    return f"got {await promise}"


@waiter.handler()
async def wait_later(ctx: Context, key: str) -> str:
    """Hands the id out, then sleeps: the resolution arrives before the awakeable is awaited."""
    awakeable_id, promise = ctx.awakeable(type_hint=str)
    ctx.object_send(hold, key=key, arg=awakeable_id)
    await ctx.sleep(timedelta(milliseconds=800))
    return f"got {await promise}"


@waiter.handler()
async def wait_or_timeout(ctx: Context, key: str) -> str:
    awakeable_id, promise = ctx.awakeable(type_hint=str)
    ctx.object_send(hold, key=key, arg=awakeable_id)
    match await restate.select(value=promise, timeout=ctx.sleep(timedelta(milliseconds=300))):
        case ["value", value]:
            return f"got {value}"
        case _:
            return "sleep"


attacher = restate.Service("Attacher")


@attacher.handler()
async def attach(ctx: Context, invocation_id: str) -> str:
    try:
        return f"attached: {await ctx.attach_invocation(invocation_id, type_hint=str)}"
    except TerminalError as exc:
        return f"failed: {exc.status_code} {exc.message}"


chain = restate.Service("Chain")


@chain.handler()
async def top(ctx: Context, key: str) -> str:
    return await ctx.service_call(middle, arg=key)


@chain.handler()
async def middle(ctx: Context, key: str) -> str:
    try:
        return await ctx.service_call(wait, arg=key)
    except TerminalError as exc:
        await ctx.run("note", lambda: None)  # a cancelled handler can still use its context
        raise TerminalError(f"middle saw {exc.status_code} {exc.message}", exc.status_code) from exc


@chain.handler()
async def send_and_cancel(ctx: Context, key: str) -> str:
    handle = ctx.service_send(wait, arg=key)
    await ctx.run("handed out", lambda: None)
    await handle.cancel_invocation()
    return await handle.invocation_id()


@chain.handler()
async def echo(ctx: Context, text: str) -> str:
    return await ctx.run("echo", lambda: text)


@chain.handler()
async def call_idempotently(ctx: Context, text: str) -> list:
    together = [ctx.service_call(echo, arg=text, idempotency_key="same") for _ in range(2)]
    first, second = [await f for f in together]  # the second attaches to the first, in flight
    later = await ctx.service_call(echo, arg="ignored", idempotency_key="same")  # completed: answered at once
    return [first, second, later]


#: Flipped by the test once the "bug" is fixed.
repaired = {"done": False}
fragile = restate.Service(
    "Fragile",
    invocation_retry_policy=restate.InvocationRetryPolicy(
        initial_interval=timedelta(milliseconds=10), max_attempts=2, on_max_attempts="pause"
    ),
)


@fragile.handler()
async def until_repaired(ctx: Context) -> str:
    if not repaired["done"]:
        raise RuntimeError("not repaired yet")
    return "repaired"


app = restate.app([waiter, holder, attacher, chain, fragile])
