"""Driving `restate_pg.testing.memory` in the DB-free tests: an invocation to its end, then a
replay of its whole journal that must give the same result and write nothing new."""

from __future__ import annotations

import dataclasses
import typing

from restate_pg.core.records import Batch
from restate_pg.testing.memory import MemoryRuntime

#: What the test does when the invocation under test is suspended and nothing else can run.
Outside = typing.Callable[[MemoryRuntime, str], typing.Awaitable[None]]


async def settle(rt: MemoryRuntime, invocation_id: str, outside: typing.Optional[Outside] = None,
                 rounds: int = 50) -> str:
    """Run `invocation_id` and whatever it started until it completed; while it waits, fire its
    timers and call `outside` (to resolve what only the test can). Its final status's outcome."""
    for _ in range(rounds):
        await rt.drain()
        inv = rt.invocation(invocation_id)
        if inv.status == "completed":
            return "failed" if inv.failure is not None else "completed"
        fired = rt.fire_timers(invocation_id)
        if outside is not None:
            await outside(rt, invocation_id)
        if not fired and not rt.runnable():
            raise AssertionError(f"{invocation_id} is stuck {inv.status}: {rt.journal(invocation_id)}")
    raise AssertionError(f"{invocation_id} did not finish in {rounds} rounds")


def writes(batch: Batch) -> Batch:
    """What `batch` wrote besides ending the attempt and asking again what is idempotent to ask:
    a cancelled invocation's children are cancelled again, and an attach or a promise read left
    unanswered is asked again (see `JournalMachine.raise_if_cancelled`, `attach`, `promise_get`)."""
    return dataclasses.replace(batch, outcome=None, cancels=[], attaches=[], promise_gets=[], promise_key=None)


async def replay(rt: MemoryRuntime, invocation_id: str) -> typing.Any:
    """Run the completed `invocation_id` once more from its whole journal; its result (or the
    TerminalError it failed with), after checking that the attempt wrote nothing but its outcome."""
    journal = rt.journal(invocation_id)
    flushes = len(rt.store.flushes)
    rt.reopen(invocation_id)
    outcome = await rt.run(invocation_id)
    assert outcome in ("completed", "failed"), outcome
    assert rt.journal(invocation_id) == journal
    for _, batch in rt.store.flushes[flushes:]:
        assert writes(batch).empty(), f"a replay wrote {batch}"
    return outcome
