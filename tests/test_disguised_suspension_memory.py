"""An attempt that suspended ends suspended, whatever the handler raises after: agent libraries
catch what their callbacks raise and raise errors of their own (restate_pg.ext disguises the
suspension as restate-sdk does), and that must not turn a suspension into a failed attempt."""

from __future__ import annotations

from datetime import timedelta

import pytest

import restate_pg as restate
from restate_pg import Context
from restate_pg.testing.memory import MemoryRuntime

pytestmark = pytest.mark.memory

library = restate.Service("Library")


@library.handler()
async def disguised(ctx: Context) -> str:
    try:
        await ctx.sleep(timedelta(hours=1))
    except BaseException as exc:  # noqa: BLE001 - what a library wrapping its callbacks does
        raise ValueError("the library's own error") from exc
    return "woke"


async def test_a_suspension_the_handler_disguised_is_still_a_suspension() -> None:
    rt = MemoryRuntime(restate.app([library]))  # inactivity timeout 0: every wait suspends
    invocation_id = rt.submit(disguised)
    assert await rt.run(invocation_id) == "suspended"
    assert rt.invocation(invocation_id).status == "suspended"
    assert rt.fire_timers(invocation_id) == 1
    await rt.drain()
    assert rt.result(invocation_id) == "woke"
    assert rt.invocation(invocation_id).attempts == 2
