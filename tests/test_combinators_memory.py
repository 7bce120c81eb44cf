"""The combinators over futures that complete in every order, without PostgreSQL.

A handler starts three futures of different kinds (a call, an awakeable, a sleep) and combines
them with `as_completed`, `select`, `gather` or `wait_completed`. The test completes them in each
of the six orders: all while the invocation is suspended (one attempt then finds them all and
must order them by their journal positions), one per attempt, or while one attempt waits in
memory. The answer must follow the order of completion, and a replay of the finished journal
must give it again. As in Restate, a combinator takes completions one at a time in journal order,
as far as it needs: `wait_completed` reports the first one done, however many followed it.
"""

from __future__ import annotations

import asyncio
import itertools
import typing
from datetime import timedelta

import pytest

import restate_pg as restate
from restate_pg import Context
from restate_pg.testing.memory import MemoryRuntime
from tests.apps import replay as apps
from tests.support.memory import replay
from tests.support.polling import eventually

pytestmark = pytest.mark.memory

racing = restate.Service("Racing")
KINDS = ("call", "awakeable", "sleep")
ORDERS = list(itertools.permutations(KINDS))
MODES = ("as_completed", "select", "gather", "wait_completed")


@racing.handler()
async def race(ctx: Context, mode: str) -> typing.Any:
    _, awakeable = ctx.awakeable()
    futures = {
        "call": ctx.service_call(apps.echo, arg="call"),
        "awakeable": awakeable,
        "sleep": ctx.sleep(timedelta(seconds=30)),
    }
    names = {id(future): name for name, future in futures.items()}
    if mode == "as_completed":
        return [names[id(future)] async for future in restate.as_completed(*futures.values())]
    if mode == "select":
        name, value = await restate.select(**futures)
        return [name, value]
    if mode == "gather":
        done = await restate.gather(*futures.values())
        return [names[id(future)] for future in done] + [await futures["call"], await futures["awakeable"]]
    done_list, pending = await restate.wait_completed(*futures.values())
    return [[names[id(f)] for f in done_list], [names[id(f)] for f in pending]]


APP = restate.app([racing, apps.tools])
VALUES = {"call": "echo call", "awakeable": "woken", "sleep": None}


async def complete(rt: MemoryRuntime, invocation_id: str, kind: str) -> None:
    """Complete the future of `kind` from outside: run the callee, resolve the awakeable, fire the timer."""
    if kind == "call":
        await rt.run(rt.children(invocation_id)[0])
    elif kind == "awakeable":
        rt.resolve_awakeable(rt.awakeables(invocation_id)[0], b'"woken"')
    else:
        assert rt.fire_timers(invocation_id) == 1


def expected(mode: str, order: typing.Sequence[str]) -> typing.Any:
    """The answer when the futures complete in `order`, whenever the handler looks."""
    if mode == "as_completed":
        return list(order)
    if mode == "select":
        return [order[0], VALUES[order[0]]]
    if mode == "gather":
        return list(KINDS) + ["echo call", "woken"]
    return [[order[0]], [kind for kind in KINDS if kind != order[0]]]


@pytest.mark.parametrize("order", ORDERS, ids="-".join)
@pytest.mark.parametrize("mode", MODES)
async def test_completions_found_together_are_taken_in_journal_order(mode: str, order: typing.Tuple[str, ...]) -> None:
    rt = MemoryRuntime(APP)
    invocation_id = rt.submit(race, mode)
    assert await rt.run(invocation_id) == "suspended"
    for kind in order:
        await complete(rt, invocation_id, kind)
    assert await rt.run(invocation_id) == "completed"
    answer = rt.result(invocation_id)
    assert answer == expected(mode, order)
    assert await replay(rt, invocation_id) == "completed"
    assert rt.result(invocation_id) == answer


@pytest.mark.parametrize("order", ORDERS, ids="-".join)
@pytest.mark.parametrize("mode", MODES)
async def test_completions_arriving_one_per_attempt(mode: str, order: typing.Tuple[str, ...]) -> None:
    rt = MemoryRuntime(APP)
    invocation_id = rt.submit(race, mode)
    assert await rt.run(invocation_id) == "suspended"
    for kind in order:
        await complete(rt, invocation_id, kind)
        if await rt.run(invocation_id) == "completed":
            break
    answer = rt.result(invocation_id)
    assert answer == expected(mode, order)
    assert await replay(rt, invocation_id) == "completed"
    assert rt.result(invocation_id) == answer


@pytest.mark.parametrize("order", ORDERS, ids="-".join)
@pytest.mark.parametrize("mode", MODES)
async def test_completions_reaching_an_attempt_that_waits_in_memory(mode: str, order: typing.Tuple[str, ...]) -> None:
    rt = MemoryRuntime(APP, inactivity_timeout=timedelta(seconds=30))
    invocation_id = rt.submit(race, mode)
    attempt = asyncio.ensure_future(rt.run(invocation_id))
    # the attempt flushes its commands before it waits: then the callee exists
    assert await eventually(lambda: _flushed(rt, invocation_id), True) is True
    for kind in order:
        await complete(rt, invocation_id, kind)
    assert await asyncio.wait_for(attempt, 10) == "completed"
    assert rt.invocation(invocation_id).attempts == 1, "it never suspended"
    answer = rt.result(invocation_id)
    # the wake-ups may be read together or one by one: as for a replay, the journal decides
    assert answer == expected(mode, order)
    assert await replay(rt, invocation_id) == "completed"
    assert rt.result(invocation_id) == answer


async def _flushed(rt: MemoryRuntime, invocation_id: str) -> bool:
    return bool(rt.children(invocation_id))
