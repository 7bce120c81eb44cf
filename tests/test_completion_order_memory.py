"""Completions that happen while no attempt runs are journaled in the order they happened, without
PostgreSQL: timers by their wake-up times (whatever order the handler gave them in, however late
the next attempt starts), interleaved with notifications by the time those were stored. The first
execution, the attempt after a suspension and a replay after a crash see the same order."""

from __future__ import annotations

import typing
from datetime import timedelta

import pytest

import restate_pg as restate
from restate_pg import Context
from restate_pg.testing.memory import MemoryRuntime
from tests.apps import replay as apps
from tests.support.memory import replay

pytestmark = pytest.mark.memory

ordering = restate.Service("Ordering")
MILLIS = (900, 300, 600)


@ordering.handler()
async def timers(ctx: Context, mode: str) -> typing.Any:
    sleeps = {ms: ctx.sleep(timedelta(milliseconds=ms)) for ms in MILLIS}
    names = {id(future): ms for ms, future in sleeps.items()}
    if mode == "as_completed":
        return [names[id(future)] async for future in restate.as_completed(*sleeps.values())]
    if mode == "select":
        return (await restate.select(**{str(ms): future for ms, future in sleeps.items()}))[0]
    done, pending = await restate.wait_completed(*sleeps.values())
    return [[names[id(f)] for f in done], [names[id(f)] for f in pending]]


@ordering.handler()
async def call_between_timers(ctx: Context) -> typing.List[str]:
    futures = {"early": ctx.sleep(timedelta(seconds=1)), "call": ctx.service_call(apps.echo, arg="x"),
               "late": ctx.sleep(timedelta(seconds=3))}
    names = {id(future): name for name, future in futures.items()}
    return [names[id(future)] async for future in restate.as_completed(*futures.values())]


@ordering.handler()
async def call_or_sleep(ctx: Context) -> typing.List[typing.List[str]]:
    call = ctx.service_call(apps.echo, arg="quick")
    sleep = ctx.sleep(timedelta(seconds=2))
    done, pending = await restate.wait_completed(call, sleep)
    label = {id(call): "call", id(sleep): "sleep"}
    return [[label[id(f)] for f in done], [label[id(f)] for f in pending]]


APP = restate.app([ordering, apps.tools])


@pytest.mark.parametrize(("mode", "expected"), [
    ("as_completed", [300, 600, 900]), ("select", "300"), ("wait_completed", [[300], [900, 600]]),
])
async def test_timers_all_over_when_the_attempt_starts_are_taken_by_wake_up_time(mode: str, expected: typing.Any) -> None:
    rt = MemoryRuntime(APP)
    invocation_id = rt.submit(timers, mode)
    assert await rt.run(invocation_id) == "suspended"
    rt.clock.current += timedelta(seconds=5)  # the next attempt starts long after all three were due
    assert await rt.run(invocation_id) == "completed"
    assert rt.result(invocation_id) == expected
    assert await replay(rt, invocation_id) == "completed"
    assert rt.result(invocation_id) == expected


async def test_timers_fired_from_outside_are_delivered_by_wake_up_time() -> None:
    rt = MemoryRuntime(APP)
    invocation_id = rt.submit(timers, "as_completed")
    assert await rt.run(invocation_id) == "suspended"
    assert rt.fire_timers(invocation_id) == 3
    assert await rt.run(invocation_id) == "completed"
    assert rt.result(invocation_id) == [300, 600, 900]


async def test_timers_over_one_by_one_across_attempts() -> None:
    rt = MemoryRuntime(APP)
    invocation_id = rt.submit(timers, "as_completed")
    assert await rt.run(invocation_id) == "suspended"
    for _ in MILLIS:
        rt.clock.current += timedelta(milliseconds=300)
        outcome = await rt.run(invocation_id)
    assert outcome == "completed"
    assert rt.result(invocation_id) == [300, 600, 900]
    assert await replay(rt, invocation_id) == "completed"
    assert rt.result(invocation_id) == [300, 600, 900]


@pytest.mark.parametrize(("call_at", "expected"), [
    (0.5, ["call", "early", "late"]), (2, ["early", "call", "late"]), (4, ["early", "late", "call"]),
])
async def test_a_notification_is_placed_among_the_timers_by_when_it_was_stored(call_at: float, expected: typing.List[str]) -> None:
    rt = MemoryRuntime(APP)
    invocation_id = rt.submit(call_between_timers)
    assert await rt.run(invocation_id) == "suspended"
    rt.clock.current += timedelta(seconds=call_at)
    await rt.run(rt.children(invocation_id)[0])  # the callee answers now, while the caller is suspended
    rt.clock.current += timedelta(seconds=5)  # the caller resumes after every timer is over
    assert await rt.run(invocation_id) == "completed"
    assert rt.result(invocation_id) == expected
    assert await replay(rt, invocation_id) == "completed"
    assert rt.result(invocation_id) == expected


async def test_wait_completed_reports_only_what_completed_before_it_looked() -> None:
    rt = MemoryRuntime(APP)
    invocation_id = rt.submit(call_or_sleep)
    assert await rt.run(invocation_id) == "suspended"
    await rt.run(rt.children(invocation_id)[0])
    assert await rt.run(invocation_id) == "completed"  # resumed by the call, before the sleep is over
    assert rt.result(invocation_id) == [["call"], ["sleep"]]
    # a replay after a crash, long after the sleep ended (and journaled its end), sees the same
    rt.clock.current += timedelta(seconds=5)
    rt.reopen(invocation_id)
    assert await rt.run(invocation_id) == "completed"
    assert [row.entry_type for row in rt.journal(invocation_id) if row.completes is not None] == ["Call", "Sleep"]
    assert rt.result(invocation_id) == [["call"], ["sleep"]]
