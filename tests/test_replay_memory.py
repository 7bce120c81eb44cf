"""Every context method, recorded by a first execution and replayed, without PostgreSQL.

The handlers of tests/apps/replay.py run on `restate_pg.testing.memory`: the real attempt,
context, journal machine and combinators, over an in-memory store. Each handler suspends between
its commands, so its first execution is already a chain of attempts that replay each other's
journal; once it completed, one more attempt replays the whole journal. Every labelled value must
be the same in each attempt that saw it, the final results equal, side effects run once, and the
replay must write nothing. Milliseconds each.
"""

from __future__ import annotations

import typing

import pytest

from restate_pg import TerminalError
from restate_pg.core.records import CANCEL_SIGNAL
from restate_pg.testing.memory import MemoryRuntime
from tests.apps import replay as app
from tests.support.memory import replay, settle

pytestmark = pytest.mark.memory


@pytest.fixture(autouse=True)
def _reset() -> typing.Iterator[None]:
    app.reset()
    yield


async def outside(rt: MemoryRuntime, invocation_id: str) -> None:
    """What the scenarios leave to the world: an awakeable resolved by someone else, a promise
    resolved by another handler of the workflow."""
    record = rt.invocation(invocation_id).record
    if record.handler == "awakeables":
        ids = rt.awakeables(invocation_id)
        if len(ids) == 3 and not rt.invocation(invocation_id).mailbox:
            rt.resolve_awakeable(ids[2], b'"from outside"')
    if record.handler == "promises" and not any(i.record.handler == "approve" for i in rt.store.invocations.values()):
        rt.submit(app.approve, "granted", key=record.key)


EXPECTED: typing.Dict[str, typing.Any] = {
    "state": {
        "stored": "before", "a": 1, "b": {"x": [1, 2]}, "b_cleared": None, "keys": ["a", "stored"],
        "after_clear_all": None, "keys_after": [], "key": "k",
    },
    "sleeps": ["slept"],
    "awakeables": {"own": {"resolved": "by myself"}, "rejected": [451, "not today"], "outside": "from outside"},
    "promises": {
        "peek_before": None, "own": "mine", "again": [409, "promise was already completed"],
        "refused": [403, "nope"], "verdict": "granted", "peek_after": "granted",
    },
}


@pytest.mark.parametrize("scenario", sorted(app.SCENARIOS))
async def test_a_replay_of_the_whole_journal_gives_the_recorded_results(scenario: str) -> None:
    fn, key = app.SCENARIOS[scenario]
    rt = MemoryRuntime(app.app)
    rt.store.state[("Box", "k")] = {"stored": b'"before"'}
    invocation_id = rt.submit(fn, key=key)

    assert await settle(rt, invocation_id, outside) == "completed"
    first = rt.result(invocation_id)
    assert rt.invocation(invocation_id).attempts > 1, "the scenario should suspend at least once"
    effects = dict(app.effects)

    assert await replay(rt, invocation_id) == "completed"
    assert rt.result(invocation_id) == first
    assert dict(app.effects) == effects, "a replay runs no side effect again"
    for label, values in app.observed.items():
        assert len(set(values)) == 1, f"{label}: attempts saw {values}"
    expected = EXPECTED.get(scenario)
    if isinstance(expected, dict):
        assert {k: first[k] for k in expected} == expected
    elif expected is not None:
        assert first == expected


async def test_runs_journal_values_failures_and_run_once() -> None:
    rt = MemoryRuntime(app.app)
    invocation_id = rt.submit(app.runs)
    await settle(rt, invocation_id)
    out = rt.result(invocation_id)
    assert out["run"] == "first#1" and out["typed"] == 41 and out["args"] == 5
    assert out["refused"] == [422, "refused refused"]
    assert app.effects == {"first": 1, "typed": 1, "refused": 1}
    assert out["id"] == invocation_id


async def test_calls_reach_their_callees_and_sends_are_recorded() -> None:
    rt = MemoryRuntime(app.app)
    invocation_id = rt.submit(app.calls)
    await settle(rt, invocation_id)
    out = rt.result(invocation_id)
    assert out["service"] == "echo hi"
    assert out["object"] == 2
    assert out["workflow"] == "workflow wf-called: yes"
    assert out["refused"] == [418, "no way"]
    assert out["generic"] == '"echo raw"'
    children = rt.children(invocation_id)
    assert out["call_id_is_stable"] in children
    assert out["sent"] == children[-5:]
    assert rt.store.state[("Box", "k")]["total"] == b"7", "the object call and the object send both ran"


async def test_attach_and_cancel_reach_other_invocations() -> None:
    rt = MemoryRuntime(app.app)
    invocation_id = rt.submit(app.attach_and_cancel)
    await settle(rt, invocation_id)
    out = rt.result(invocation_id)
    assert out == {"attached": "echo attached", "missing": 404, "cancelled_child": [409, "cancelled"]}
    sleeper = rt.invocation(rt.children(invocation_id)[1])
    assert sleeper.status == "completed" and sleeper.failure is not None and sleeper.failure.code == 409


async def test_the_cancel_signal_is_the_same_constant_the_database_uses() -> None:
    from restate_pg.store.procedures import CANCEL_SIGNAL as STORED

    assert CANCEL_SIGNAL == STORED


async def test_a_state_read_is_refused_in_a_stateless_service() -> None:
    """A plain service has no state: the attempt fails (retried), it does not reach the store."""

    rt = MemoryRuntime(app.app)
    invocation_id = rt.submit(app.stateless_get)
    assert await rt.run(invocation_id) == "retry"
    retry = rt.invocation(invocation_id).last_retry
    assert retry is not None and "doesn't have state access" in retry.failure


async def test_a_terminal_failure_is_replayed_as_a_failure() -> None:
    rt = MemoryRuntime(app.app)
    invocation_id = rt.submit(app.refuse, "entry")
    assert await rt.run(invocation_id) == "failed"
    assert await replay(rt, invocation_id) == "failed"
    with pytest.raises(TerminalError) as caught:
        rt.result(invocation_id)
    assert (caught.value.status_code, caught.value.message) == (418, "no entry")
