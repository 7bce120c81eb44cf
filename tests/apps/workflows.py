"""Workflows with durable promises, written exactly as for restate-sdk."""

from __future__ import annotations

from datetime import timedelta

import restate_pg as restate
from restate_pg import TerminalError, WorkflowContext, WorkflowSharedContext

payment = restate.Workflow("PaymentWorkflow")


@payment.main()
async def run(ctx: WorkflowContext, order: dict) -> str:
    amount = order["amount"]
    await ctx.run("reserve funds", lambda: f"reserved {amount}")
    ctx.set("status", "waiting for approval")
    try:
        approved_by = await ctx.promise("approval").value()
    except TerminalError as exc:
        await ctx.run("release funds", lambda: f"released {amount}")
        ctx.set("status", "cancelled")
        return f"cancelled: {exc.message}"
    ctx.set("status", "approved")
    return f"charged {amount}, approved by {approved_by}"


@payment.handler()
async def approve(ctx: WorkflowSharedContext, who: str) -> None:
    await ctx.promise("approval").resolve(who)


@payment.handler()
async def reject(ctx: WorkflowSharedContext, reason: str) -> None:
    await ctx.promise("approval").reject(reason, 402)


@payment.handler()
async def status(ctx: WorkflowSharedContext) -> str | None:
    return await ctx.get("status")


@payment.handler()
async def peek_approval(ctx: WorkflowSharedContext) -> str:
    value = await ctx.promise("approval").peek()
    return "nobody yet" if value is None else value


brief = restate.Workflow("Brief")


@brief.main(workflow_retention=timedelta(milliseconds=200))
async def brief_run(ctx: WorkflowContext, note: str) -> str:
    runs = (await ctx.get("runs") or 0) + 1
    ctx.set("runs", runs)
    await ctx.promise("seen").resolve(note)
    return f"{note} (run {runs} of this id)"


starter = restate.Service("Starter")


@starter.handler()
async def start_twice(ctx: restate.Context, order: str) -> list:
    first = ctx.workflow_call(run, key=order, arg={"amount": 2})
    ctx.workflow_send(approve, key=order, arg="eve")
    outcomes = [await first]
    try:
        outcomes.append(await ctx.workflow_call(run, key=order, arg={"amount": 3}))
    except TerminalError as exc:
        outcomes.append(f"{exc.status_code} {exc.message}")
    return outcomes


app = restate.app([payment, brief, starter])
