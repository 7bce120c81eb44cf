"""Handlers for the flow-control tests: each records when it starts and ends (in the
side-effect ledger, the database's clock), so that a test can check how many ran at once and
how fast they started, whichever worker process ran them."""

from __future__ import annotations

import asyncio
import typing

import restate_pg as restate
from restate_pg import Context
from tests.support import ledger

limited = restate.Service("Limited")


@limited.handler()
async def work(ctx: Context, job: typing.Dict[str, typing.Any]) -> str:
    """Run for `ms` milliseconds between two journaled records, both inside the attempt's lease."""
    await ctx.run("start", lambda: ledger.record(job["tag"], f"start {job['n']}"))
    await asyncio.sleep(job.get("ms", 0) / 1000)
    await ctx.run("end", lambda: ledger.record(job["tag"], f"end {job['n']}"))
    return f"done {job['n']}"


@limited.handler()
async def fan_out(ctx: Context, job: typing.Dict[str, typing.Any]) -> typing.List[str]:
    """restate-sdk's ctx.scope(): `count` scoped calls with one limit key, awaited together."""
    scoped = ctx.scope(job["scope"])
    calls = [scoped.service_call(work, {"tag": job["tag"], "n": n, "ms": job.get("ms", 0)}, limit_key=job.get("limit_key"))
             for n in range(job["count"])]
    await restate.gather(*calls)
    return [await call for call in calls]


def _service_running_work(name: str, *handlers: str) -> restate.Service:
    """A service whose handlers all run `work`: each test of rules on a service or handler has
    its own, since such a rule holds every invocation of its target."""
    service = restate.Service(name)
    for handler in handlers:
        async def run(ctx: Context, job: typing.Dict[str, typing.Any]) -> str:
            await ctx.run("start", lambda: ledger.record(job["tag"], f"start {job['n']}"))
            await asyncio.sleep(job.get("ms", 0) / 1000)
            await ctx.run("end", lambda: ledger.record(job["tag"], f"end {job['n']}"))
            return f"done {job['n']}"

        service.handler(name=handler)(run)
    return service


capped = _service_running_work("Capped", "work", "free")  # a concurrency rule on Capped/work only
paced = _service_running_work("Paced", "work")  # a rate rule on the service
ranked = _service_running_work("Ranked", "work", "urgent")  # concurrency 1; Ranked/urgent: priority 100
settled = _service_running_work("Settled", "work")  # a debounce window on Settled/work
bounded = _service_running_work("Bounded", "work")  # a backlog rule on Bounded/work

tenanted = restate.VirtualObject("Tenanted")  # concurrency_per_key 1: one running per object key


@tenanted.handler(kind="shared")
async def shared_work(ctx: restate.ObjectSharedContext, job: typing.Dict[str, typing.Any]) -> str:
    """`work` on a shared handler, which runs beside others of its key unless a rule says not."""
    await ctx.run("start", lambda: ledger.record(job["tag"], f"start {job['n']}"))
    await asyncio.sleep(job.get("ms", 0) / 1000)
    await ctx.run("end", lambda: ledger.record(job["tag"], f"end {job['n']}"))
    return f"done {job['n']}"


app = restate.app([limited, capped, paced, ranked, settled, bounded, tenanted])
