"""Waiters that declare the type of what completes them (awakeables, workflow promises), and the
handlers that complete them, written exactly as for restate-sdk. Awakeable ids are handed to
`tests.apps.awakeables`' Holder."""

from __future__ import annotations

import typing

import pydantic

import restate_pg as restate
from restate_pg import Context, TerminalError, WorkflowContext, WorkflowSharedContext
from tests.apps import awakeables


class Approval(pydantic.BaseModel):
    approved: bool
    amount: int


waiter = restate.Service("TypedWaiter")
resolver = restate.Service("Resolver")


@resolver.handler()
async def resolve(ctx: Context, request: dict) -> str:
    """Resolves awakeable `request["id"]` with `request["value"]`, any JSON; a value its waiter
    cannot take ends this invocation with a terminal 400 instead of reaching the waiter."""
    ctx.resolve_awakeable(request["id"], request["value"])
    await ctx.run("after resolving", lambda: "done")  # the next flush, where the value is checked
    return "resolved"


@waiter.handler()
async def wait_int(ctx: Context, key: str) -> int:
    awakeable_id, promise = ctx.awakeable(type_hint=int)
    ctx.object_send(awakeables.hold, key=key, arg=awakeable_id)
    return await promise + 1


@waiter.handler()
async def wait_approval(ctx: Context, key: str) -> str:
    awakeable_id, promise = ctx.awakeable(type_hint=Approval)
    ctx.object_send(awakeables.hold, key=key, arg=awakeable_id)
    approval = await promise
    return f"approved={approval.approved} amount={approval.amount}"


flow = restate.Workflow("TypedFlow")


@flow.main()
async def run(ctx: WorkflowContext, start: str) -> int:
    amount = ctx.promise("amount", type_hint=int).value()
    ctx.set("status", "waiting")  # flushed with the wait: once seen, the waiter is registered
    return await amount * 2


@flow.handler()
async def status(ctx: WorkflowSharedContext) -> str | None:
    return await ctx.get("status")


@flow.handler()
async def give(ctx: WorkflowSharedContext, amount: typing.Any) -> str:
    try:
        await ctx.promise("amount").resolve(amount)
    except TerminalError as exc:
        return f"refused {exc.status_code}: {exc.message}"
    return "resolved"


@flow.handler()
async def give_undeclared(ctx: WorkflowSharedContext, value: typing.Any) -> str:
    """Resolves a promise no handler waits for: no type is declared, any value is taken."""
    await ctx.promise("note").resolve(value)
    return "resolved"


app = restate.app([waiter, resolver, awakeables.holder, flow])
