"""Cancellation delivered at each await of a handler, without PostgreSQL.

A handler awaits, one after the other, a sleep, a call, an awakeable, an attach and a `select`.
The test lets it pass the first k of them, then cancels it: it must stop at await k+1 with a
terminal 409 "cancelled", whether it was suspended there or waiting in memory; the invocation it
was waiting for in a call is cancelled with it; the compensation it runs on the way out runs
once; nothing after await k+1 is ever issued; and a replay of the finished journal ends the same.
"""

from __future__ import annotations

import asyncio
import typing
from datetime import timedelta

import pytest

import restate_pg as restate
from restate_pg import Context, TerminalError
from restate_pg.core.records import CANCEL_SIGNAL
from restate_pg.testing.memory import MemoryRuntime
from tests.apps import replay as apps
from tests.support.memory import replay
from tests.support.polling import eventually

pytestmark = pytest.mark.memory

cancellable = restate.Service("Cancellable")
STEPS = ("sleep", "call", "awakeable", "attach", "select")
#: The steps each attempt passed, and the compensations that ran.
passed: typing.List[str] = []
compensated: typing.List[str] = []


@cancellable.handler()
async def steps(ctx: Context) -> typing.List[str]:
    done: typing.List[str] = []
    try:
        await ctx.sleep(timedelta(seconds=10))
        done.append("sleep")
        await ctx.service_call(apps.echo, arg="call")
        done.append("call")
        _, awakeable = ctx.awakeable()
        await awakeable
        done.append("awakeable")
        child = ctx.service_send(apps.echo, arg="attached")
        await ctx.attach_invocation(await child.invocation_id())
        done.append("attach")
        _, second = ctx.awakeable()
        await restate.select(awakeable=second, timeout=ctx.sleep(timedelta(hours=1)))
        done.append("select")
    except TerminalError as exc:
        if exc.status_code == 409:
            await ctx.run("compensate", lambda: compensated.append(",".join(done)))
        raise
    finally:
        passed[:] = done
    return done


APP = restate.app([cancellable, apps.tools])
#: The commands each step issues.
STEP_COMMANDS = {"sleep": ["Sleep"], "call": ["Call"], "awakeable": ["Awakeable"],
                 "attach": ["OneWayCall", "AttachInvocation"], "select": ["Awakeable", "Sleep"]}


@pytest.fixture(autouse=True)
def _reset() -> typing.Iterator[None]:
    passed.clear()
    compensated.clear()
    yield


async def advance(rt: MemoryRuntime, invocation_id: str) -> None:
    """Complete what the handler waits for now: its timers, its awakeables, its callees."""
    rt.fire_timers(invocation_id)
    for awakeable_id in rt.awakeables(invocation_id):
        rt.resolve_awakeable(awakeable_id, b'"ok"')
    for child in rt.children(invocation_id):
        if rt.invocation(child).status == "pending":
            await rt.run(child)


def assert_cancelled_after(rt: MemoryRuntime, invocation_id: str, k: int) -> None:
    inv = rt.invocation(invocation_id)
    assert inv.status == "completed" and inv.failure is not None
    assert (inv.failure.code, inv.failure.message) == (409, "cancelled")
    assert passed == list(STEPS[:k])
    assert compensated == [",".join(STEPS[:k])], "the compensation ran once"
    commands = sorted((row for row in rt.journal(invocation_id) if row.command_index is not None),
                      key=lambda row: typing.cast(int, row.command_index))
    issued = [kind for step in STEPS[: k + 1] for kind in STEP_COMMANDS[step]] + ["Run"]  # + the compensation
    assert [row.entry_type for row in commands] == issued, "nothing after the cancelled await is issued"
    if STEPS[k] == "call":  # the callee it waited for is cancelled with it
        callee = rt.invocation(rt.children(invocation_id)[0])
        assert any(item.command_index == CANCEL_SIGNAL for item in callee.mailbox)


@pytest.mark.parametrize("k", range(len(STEPS)), ids=lambda k: f"at-{STEPS[k]}")
async def test_a_cancellation_while_suspended_stops_the_handler_at_that_await(k: int) -> None:
    rt = MemoryRuntime(APP)
    invocation_id = rt.submit(steps)
    assert await rt.run(invocation_id) == "suspended"
    for _ in range(k):
        await advance(rt, invocation_id)
        assert await rt.run(invocation_id) == "suspended"
    rt.cancel(invocation_id)
    assert await rt.run(invocation_id) == "failed"
    assert_cancelled_after(rt, invocation_id, k)
    assert await replay(rt, invocation_id) == "failed"
    assert compensated == [",".join(STEPS[:k])], "a replay does not compensate again"


@pytest.mark.parametrize("k", range(len(STEPS)), ids=lambda k: f"at-{STEPS[k]}")
async def test_a_cancellation_reaches_an_attempt_waiting_in_memory(k: int) -> None:
    rt = MemoryRuntime(APP)
    invocation_id = rt.submit(steps)
    assert await rt.run(invocation_id) == "suspended"
    for _ in range(k):
        await advance(rt, invocation_id)
        assert await rt.run(invocation_id) == "suspended"
    rt.default_inactivity_timeout = 30.0
    attempt = asyncio.ensure_future(rt.run(invocation_id))
    assert await eventually(lambda: _waiting(rt, invocation_id), True) is True
    rt.cancel(invocation_id)
    assert await asyncio.wait_for(attempt, 10) == "failed"
    assert_cancelled_after(rt, invocation_id, k)


async def _waiting(rt: MemoryRuntime, invocation_id: str) -> bool:
    """Whether the attempt of `invocation_id` is waiting in memory for its next result."""
    attempt = rt.attempts.get(invocation_id)
    return attempt is not None and bool(attempt.ctx._waiters)


async def test_a_cancellation_after_the_end_changes_nothing() -> None:
    rt = MemoryRuntime(APP)
    invocation_id = rt.submit(steps)
    assert await rt.run(invocation_id) == "suspended"
    for _ in STEPS:
        await advance(rt, invocation_id)
        outcome = await rt.run(invocation_id)
    assert outcome == "completed" and rt.result(invocation_id) == list(STEPS)
    rt.cancel(invocation_id)
    assert rt.result(invocation_id) == list(STEPS) and compensated == []
