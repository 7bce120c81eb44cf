"""Non-determinism on each command kind, without PostgreSQL.

A workflow issues one command, then suspends at a sleep. Before its next attempt the handler is
"changed" (`VARIANT`): the next attempt issues another command where the first was recorded,
and must fail with Restate's journal-mismatch error (570), to be retried, never replacing the
recorded command. Every kind is replaced by another kind, and where a command has a name or
parameters, by the same kind with other ones.
"""

from __future__ import annotations

import typing
from datetime import timedelta

import pytest

import restate_pg as restate
from restate_pg import WorkflowContext
from restate_pg.core.ids import new_awakeable_id, new_invocation_id
from restate_pg.runtime.journal import JOURNAL_MISMATCH
from restate_pg.testing.memory import MemoryRuntime
from tests.apps import replay as apps

pytestmark = pytest.mark.memory

drifting = restate.Workflow("Drifting")
ELSEWHERE = new_invocation_id()
AWAKEABLE = new_awakeable_id(ELSEWHERE, 1)

#: One command each, as a handler issues it (awaited where the read completes at once).
COMMANDS: typing.Dict[str, typing.Callable[[WorkflowContext], typing.Any]] = {
    "get": lambda ctx: ctx.get("a"),
    "get_other": lambda ctx: ctx.get("b"),
    "set": lambda ctx: ctx.set("a", 1),
    "set_other": lambda ctx: ctx.set("b", 1),
    "clear": lambda ctx: ctx.clear("a"),
    "clear_other": lambda ctx: ctx.clear("b"),
    "clear_all": lambda ctx: ctx.clear_all(),
    "reject_awakeable": lambda ctx: ctx.reject_awakeable(AWAKEABLE, "no"),
    "state_keys": lambda ctx: ctx.state_keys(),
    "run": lambda ctx: ctx.run("r", lambda: 1),
    "run_other": lambda ctx: ctx.run("s", lambda: 1),
    "sleep": lambda ctx: ctx.sleep(timedelta(hours=2)) and None,
    "sleep_named": lambda ctx: ctx.sleep(timedelta(hours=2), name="named") and None,
    "call": lambda ctx: ctx.service_call(apps.echo, arg="x") and None,
    "call_other": lambda ctx: ctx.service_call(apps.refuse, arg="x") and None,
    "send": lambda ctx: ctx.service_send(apps.echo, arg="x") and None,
    "send_other": lambda ctx: ctx.object_send(apps.add, key="k", arg=1) and None,
    "awakeable": lambda ctx: ctx.awakeable() and None,
    "resolve_awakeable": lambda ctx: ctx.resolve_awakeable(AWAKEABLE, "v"),
    "promise_get": lambda ctx: ctx.promise("p").value() and None,
    "promise_get_other": lambda ctx: ctx.promise("q").value() and None,
    "promise_peek": lambda ctx: ctx.promise("p").peek() and None,
    "promise_resolve": lambda ctx: ctx.promise("p").resolve("v") and None,
    "attach": lambda ctx: ctx.attach_invocation(ELSEWHERE) and None,
    "cancel": lambda ctx: ctx.cancel_invocation(ELSEWHERE),
}
#: Changes a replay does not see, by design: the target of an attach or a cancellation (ids of
#: invocations a handler created differ between attempts), and the value an awakeable is completed with.
UNCOMPARED = {
    "attach_elsewhere": lambda ctx: ctx.attach_invocation(new_invocation_id()) and None,
    "cancel_elsewhere": lambda ctx: ctx.cancel_invocation(new_invocation_id()),
    "resolve_awakeable_otherwise": lambda ctx: ctx.resolve_awakeable(AWAKEABLE, "w"),
    "reject_awakeable_otherwise": lambda ctx: ctx.resolve_awakeable(AWAKEABLE, "v"),  # a resolve where a reject was
}
KINDS = [name for name in COMMANDS if not name.endswith(("_other", "_named"))]
#: (recorded, replayed): each kind replaced by the next kind, and by itself with other params.
CHANGES = [(kind, KINDS[(i + 1) % len(KINDS)]) for i, kind in enumerate(KINDS)] + [
    (name.rsplit("_", 1)[0], name) for name in COMMANDS if name.endswith(("_other", "_named"))
]
VARIANT = ["get"]


@drifting.main()
async def drift(ctx: WorkflowContext) -> str:
    issued = {**COMMANDS, **UNCOMPARED}[VARIANT[0]](ctx)
    if issued is not None:
        await issued
    await ctx.sleep(timedelta(hours=1), name="barrier")
    return "done"


APP = restate.app([drifting, apps.tools, apps.box])


async def first_attempt(kind: str) -> typing.Tuple[MemoryRuntime, str]:
    VARIANT[0] = kind
    rt = MemoryRuntime(APP)
    invocation_id = rt.submit(drift, key=kind)
    assert await rt.run(invocation_id) == "suspended"
    rt.fire_timers(invocation_id)
    return rt, invocation_id


@pytest.mark.parametrize(("recorded", "replayed"), CHANGES, ids=[f"{a}->{b}" for a, b in CHANGES])
async def test_another_command_where_one_was_recorded_is_a_journal_mismatch(recorded: str, replayed: str) -> None:
    rt, invocation_id = await first_attempt(recorded)
    journal = rt.journal(invocation_id)
    VARIANT[0] = replayed
    assert await rt.run(invocation_id) == "retry"
    retry = rt.invocation(invocation_id).last_retry
    assert retry is not None and retry.failure_code == JOURNAL_MISMATCH
    assert "index '1'" in retry.failure, retry.failure
    new_rows = rt.journal(invocation_id)[len(journal):]
    assert all(row.command_index is None for row in new_rows), f"a command was journaled: {new_rows}"


@pytest.mark.parametrize("kind", sorted(COMMANDS))
async def test_the_same_command_replays_to_the_end(kind: str) -> None:
    rt, invocation_id = await first_attempt(kind)
    assert await rt.run(invocation_id) == "completed"
    assert rt.result(invocation_id) == "done"


@pytest.mark.parametrize("changed", sorted(UNCOMPARED))
async def test_what_a_replay_does_not_compare(changed: str) -> None:
    rt, invocation_id = await first_attempt(changed.rsplit("_", 1)[0])
    VARIANT[0] = changed
    assert await rt.run(invocation_id) == "completed"
