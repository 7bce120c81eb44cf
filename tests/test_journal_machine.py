"""The journal state machine on its own: no PostgreSQL, no event loop, milliseconds.

A first execution is driven on one machine; the rows it would have written become the recorded
journal of a second machine, which replays the same commands. What the database and the asyncio
side do (flushing, waking, timers) is the context's part and is tested through the real stack in
tests/test_context.py and the others.
"""

from __future__ import annotations

import itertools
import typing
from datetime import datetime, timedelta, timezone

import pytest

from restate_pg.api.errors import SdkInternalException, TerminalError
from restate_pg.core.ids import new_awakeable_id, new_invocation_id
from restate_pg.runtime.journal import NonDeterminismError, Result
from restate_pg.runtime.machine import IN_TRANSACTION, JournalMachine
from restate_pg.core.records import CANCEL_SIGNAL, Batch, Failure, JournalRow, MailboxItem, StateOp, Submission

NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)
SERVICE, KEY = "Cart", "alice"
CALLER, CALLEE, SENT, OTHER = (new_invocation_id() for _ in range(4))
#: Two ids of the awakeable of command 1, which differ only in their secret.
AWAKEABLES = {variant: new_awakeable_id(CALLER, 1) for variant in "ab"}


def submission(callee: str) -> Submission:
    return Submission(id=callee, service="Stock", handler="reserve", key=None, service_ty="service",
                      handler_ty=None, input=b"{}")


def call(machine: JournalMachine, kind: typing.Literal["Call", "OneWayCall"], callee: str) -> typing.Tuple[int, str]:
    """What CallCommands._outgoing does with the machine: a recorded callee, or a new call."""
    params = {"service": "Stock", "handler": "reserve", "key": None}
    command, recorded = machine.call(kind, params)
    if recorded is not None:
        return command, recorded
    machine.journal_call(kind, command, params, submission(callee))
    return command, callee


def drive(machine: JournalMachine, fresh: bool) -> typing.Dict[str, typing.Any]:
    """Issue one command of every kind, as a handler would; what each returned.

    `fresh`: the first execution, which also journals what only a live attempt produces
    (a run's result, a state read, the completions that arrive from outside)."""
    seen: typing.Dict[str, typing.Any] = {}
    run, _ = machine.issue("Run", "charge")
    if fresh:
        machine.journal_run(run, "charge", Result(b'"paid"'))
        machine.resolve(run, Result(b'"paid"', None, machine.next_index - 1))
    seen["run"] = machine.results[run]
    step, _ = machine.issue("Run", "insert", IN_TRANSACTION)
    if fresh:
        machine.journal_run(step, "insert", Result(None, Failure(409, "duplicate")), IN_TRANSACTION)
        machine.resolve(step, Result(None, Failure(409, "duplicate"), machine.next_index - 1))
    seen["step"] = machine.results[step]
    seen["sleep"] = machine.sleep(timedelta(seconds=5), "nap", lambda: NOW)
    seen["awakeable"] = machine.awakeable(CALLER)
    machine.complete_awakeable(seen["awakeable"][1], b"42", None)
    seen["call"] = call(machine, "Call", CALLEE)
    seen["send"] = call(machine, "OneWayCall", SENT)
    seen["send_result"] = machine.results[seen["send"][0]]
    seen["get"] = machine.promise_get("approval", False, (SERVICE, KEY))
    seen["peek"] = machine.promise_get("approval", True, (SERVICE, KEY))
    seen["complete"] = machine.promise_complete("done", b"1", None, (SERVICE, KEY))
    seen["attach"] = machine.attach(OTHER)
    machine.cancel_invocation(OTHER)
    command, replayed, known, value = machine.get_state("count", None)
    if not known:
        value = b"7"  # what the context reads from the database
    if not replayed:
        machine.journal_get_state(command, "count", None, value)
    seen["state"] = value
    command, keys = machine.state_keys(None)
    seen["keys"] = keys if keys is not None else machine.journal_state_keys(command, None, {"count": b"7"})
    machine.set_state(SERVICE, KEY, "count", b"8", None)
    machine.clear_state(SERVICE, KEY, "old", None)
    machine.clear_all_state(SERVICE, KEY, "reset")
    if fresh:  # what arrives from outside, in an order unrelated to the commands'
        machine.answer({seen["get"]: {"completed": True, "value": "MQ=="}, seen["peek"]: {"completed": False},
                        seen["complete"]: "completed", seen["attach"]: {"missing": True}}, {seen["peek"]})
        machine.ingest([MailboxItem(1, seen["call"][0], b'"ok"', None),
                        MailboxItem(2, seen["awakeable"][0], b"42", None)])
        machine.fire_timer(seen["sleep"][0])
    seen["results"] = dict(machine.results)
    return seen


def recorded_journal() -> typing.Tuple[typing.List[JournalRow], typing.Dict[str, typing.Any]]:
    first = JournalMachine([])
    seen = drive(first, fresh=True)
    return first.pending.journal, seen


def test_every_command_kind_replays_its_recorded_result_without_writing() -> None:
    rows, first = recorded_journal()
    assert [r.index for r in rows] == list(range(1, len(rows) + 1))
    replay = JournalMachine(rows)
    assert replay.is_replaying()
    again = drive(replay, fresh=False)
    assert not replay.is_replaying()
    for kind in ("run", "step", "sleep", "awakeable", "call", "send", "send_result", "get", "peek", "complete",
                 "attach", "state", "keys"):
        assert again[kind] == first[kind], kind
    # every result the first execution had, at the same position (a replay also knows the results
    # of commands journaled complete, such as SetState, which nothing awaits)
    assert {command: again["results"][command] for command in first["results"]} == first["results"]
    assert replay.pending == Batch()  # nothing journaled, submitted, resolved, cancelled or asked again
    assert first["state"] == b"7" and first["keys"] == ["count"] and first["sleep"][1] == NOW + timedelta(seconds=5)


def test_a_first_execution_journals_each_command_with_its_effects() -> None:
    machine = JournalMachine([])
    seen = drive(machine, fresh=True)
    batch = machine.pending
    assert [(r.entry_type, r.command_index, r.completes) for r in batch.journal] == [
        ("Run", 1, None), ("Run", 2, None), ("Sleep", 3, None), ("Awakeable", 4, None),
        ("CompleteAwakeable", 5, None), ("Call", 6, None), ("OneWayCall", 7, None), ("GetPromise", 8, None),
        ("PeekPromise", 9, None), ("CompletePromise", 10, None), ("AttachInvocation", 11, None),
        ("CancelInvocation", 12, None), ("GetState", 13, None), ("GetStateKeys", 14, None), ("SetState", 15, None),
        ("ClearState", 16, None), ("ClearAllState", 17, None),
        ("GetPromise", None, 8), ("PeekPromise", None, 9), ("CompletePromise", None, 10),
        ("AttachInvocation", None, 11), ("Call", None, 6), ("Awakeable", None, 4), ("Sleep", None, 3),
    ]
    assert [s.id for s in batch.submissions] == [CALLEE, SENT]
    assert batch.state == [(SERVICE, KEY, StateOp("set", "count", b"8")), (SERVICE, KEY, StateOp("clear", "old")),
                           (SERVICE, KEY, StateOp("clear_all"))]
    assert [(r.awakeable_id, r.value) for r in batch.resolutions] == [(seen["awakeable"][1], b"42")]
    assert [(g.name, g.peek) for g in batch.promise_gets] == [("approval", False), ("approval", True)]
    assert [c.name for c in batch.promise_completions] == ["done"]
    assert batch.promise_key == (SERVICE, KEY) and batch.attaches == [(OTHER, 11)]
    assert batch.cancels == [OTHER] and batch.consumed == [1, 2]
    assert seen["results"][8] == Result(b"1", None, 18)
    assert seen["results"][9] == Result(None, None, 19)  # a peek at a pending promise answers None
    assert seen["results"][11].failure == Failure(404, "invocation not found")
    assert seen["send_result"] == Result(b"", None, 7)  # a one-way call completes at its own row


def one_command(kind: str, variant: str) -> typing.Callable[[JournalMachine], typing.Any]:
    """Issue one command of `kind`; `variant` changes its name or params."""
    issuers: typing.Dict[str, typing.Callable[[JournalMachine], typing.Any]] = {
        "Run": lambda m: m.issue("Run", f"charge-{variant}"),
        "Step": lambda m: m.issue("Run", f"insert-{variant}", IN_TRANSACTION),
        "Sleep": lambda m: m.sleep(timedelta(seconds=1), f"nap-{variant}", lambda: NOW),
        "Awakeable": lambda m: m.awakeable(CALLER),
        "CompleteAwakeable": lambda m: m.complete_awakeable(AWAKEABLES[variant], b"1", None),
        "Call": lambda m: m.call("Call", {"service": "Stock", "handler": f"reserve_{variant}", "key": None}),
        "OneWayCall": lambda m: m.call("OneWayCall", {"service": "Stock", "handler": "reserve", "key": variant}),
        "GetPromise": lambda m: m.promise_get(f"p-{variant}", False, (SERVICE, KEY)),
        "PeekPromise": lambda m: m.promise_get(f"p-{variant}", True, (SERVICE, KEY)),
        "CompletePromise": lambda m: m.promise_complete(f"p-{variant}", b"1", None, (SERVICE, KEY)),
        "GetState": lambda m: m.get_state(f"count-{variant}", None),
        "GetStateKeys": lambda m: m.state_keys(f"keys-{variant}"),
        "SetState": lambda m: m.set_state(SERVICE, KEY, f"count-{variant}", b"1", None),
        "ClearState": lambda m: m.clear_state(SERVICE, KEY, f"count-{variant}", None),
        "ClearAllState": lambda m: m.clear_all_state(SERVICE, KEY, f"reset-{variant}"),
        "AttachInvocation": lambda m: m.attach(OTHER),
        "CancelInvocation": lambda m: m.cancel_invocation(OTHER),
    }
    return issuers[kind]


def recorded(kind: str) -> typing.List[JournalRow]:
    machine = JournalMachine([])
    if kind in ("Run", "Step"):  # a run is journaled with its result
        command, _ = one_command(kind, "a")(machine)
        machine.journal_run(command, f"{'charge' if kind == 'Run' else 'insert'}-a", Result(b"1"),
                            IN_TRANSACTION if kind == "Step" else None)
    elif kind in ("Call", "OneWayCall"):
        command, _ = one_command(kind, "a")(machine)
        machine.journal_call(kind, command, {"service": "Stock", "handler": "reserve_a" if kind == "Call" else "reserve",
                                             "key": None if kind == "Call" else "a"}, submission(CALLEE))
    elif kind == "GetState":  # journaled when the handler awaits the read
        command = machine.get_state("count-a", None)[0]
        machine.journal_get_state(command, "count-a", None, b"1")
    elif kind == "GetStateKeys":
        machine.journal_state_keys(machine.state_keys("keys-a")[0], "keys-a", {})
    else:
        one_command(kind, "a")(machine)
    return machine.pending.journal


KINDS = ["Run", "Step", "Sleep", "Awakeable", "CompleteAwakeable", "Call", "OneWayCall", "GetPromise", "PeekPromise",
         "CompletePromise", "GetState", "GetStateKeys", "SetState", "ClearState", "ClearAllState",
         "AttachInvocation", "CancelInvocation"]


@pytest.mark.parametrize("kind", KINDS)
def test_a_different_command_where_one_was_recorded_is_non_determinism(kind: str) -> None:
    other = "Sleep" if kind == "Run" else "Run"
    replay = JournalMachine(recorded(kind))
    with pytest.raises(NonDeterminismError) as raised:
        one_command(other, "a")(replay)
    assert raised.value.command_index == 1 and raised.value.status_code == 570
    assert replay.pending.journal == []


#: Attach and cancel have no name and compare no params: the invocation id is left out of the
#: comparison (a call's callee id is fresh in each execution), and an awakeable has neither.
NAMED_KINDS = [k for k in KINDS if k not in ("Awakeable", "AttachInvocation", "CancelInvocation")]


@pytest.mark.parametrize("kind", NAMED_KINDS)
def test_the_same_command_with_another_name_or_params_is_non_determinism(kind: str) -> None:
    replay = JournalMachine(recorded(kind))
    with pytest.raises(NonDeterminismError) as raised:
        one_command(kind, "b")(replay)
    assert "index '1'" in raised.value.message
    assert replay.pending.journal == []


def test_only_a_run_may_be_missing_below_the_last_recorded_command() -> None:
    rows = [JournalRow(2, 2, None, "Sleep", name="nap", sleep_wakeup_at=NOW)]
    with pytest.raises(NonDeterminismError):
        JournalMachine(rows).sleep(timedelta(seconds=1), "other", lambda: NOW)
    machine = JournalMachine(rows)
    command, recording = machine.issue("Run", "charge")  # its result was never journaled: it runs again
    assert (command, recording) == (1, None) and not machine.is_done(1)
    assert machine.sleep(timedelta(seconds=1), "nap", lambda: NOW) == (2, NOW)


def test_a_name_pg_cannot_store_is_refused_before_it_is_numbered() -> None:
    machine = JournalMachine([])
    with pytest.raises(TerminalError) as raised:
        machine.issue("Run", "nul\x00")
    assert raised.value.status_code == 400 and machine.next_command == 1


def awaited_commands(machine: JournalMachine) -> typing.List[int]:
    """Three commands completed from outside: a call, an awakeable, a sleep."""
    return [call(machine, "Call", CALLEE)[0], machine.awakeable(CALLER)[0],
            machine.sleep(timedelta(seconds=1), None, lambda: NOW)[0]]


@pytest.mark.parametrize("order", list(itertools.permutations(range(3))))
def test_mailbox_completions_in_any_order_get_positions_a_replay_reproduces(order: typing.Tuple[int, ...]) -> None:
    live = JournalMachine([])
    commands = awaited_commands(live)
    sleeping = {commands[2]}
    items = [MailboxItem(seq, commands[i], f"v{i}".encode(), None) for seq, i in enumerate(order, start=1)]
    assert live.ingest(items[:1], sleeping) == [commands[order[0]]]
    assert live.ingest(items, sleeping) == [commands[i] for i in order[1:]]  # a read overlapping the last one
    assert live.ingest(items, sleeping) == []
    positions = [live.completion_position(commands[i]) for i in order]
    assert positions == sorted(positions) == [4, 5, 6]
    assert [r.entry_type for r in live.pending.journal[3:]] == [["Call", "Awakeable", "Sleep"][i] for i in order]
    assert live.pending.consumed == [1, 2, 3]
    replay = JournalMachine(live.pending.journal)
    assert awaited_commands(replay) == commands
    assert {c: replay.completion_position(c) for c in commands} == {c: live.completion_position(c) for c in commands}
    assert {c: replay.results[c] for c in commands} == {c: live.results[c] for c in commands}


def test_a_notification_for_a_completed_command_is_consumed_but_not_journaled() -> None:
    machine = JournalMachine([])
    command = machine.sleep(timedelta(seconds=1), None, lambda: NOW)[0]
    assert machine.fire_timer(command) and not machine.fire_timer(command)
    assert machine.ingest([MailboxItem(1, command, b"", None), MailboxItem(2, None, None, None)], {command}) == []
    assert len(machine.pending.journal) == 2 and machine.pending.consumed == [1, 2]


def test_the_cancel_signal_cancels_the_pending_children_once_and_replays() -> None:
    machine = JournalMachine([])
    done, _ = call(machine, "Call", "inv_1done")
    pending, _ = call(machine, "Call", "inv_1pending")
    machine.ingest([MailboxItem(1, done, b"1", None)])
    machine.raise_if_cancelled()  # not cancelled: nothing happens
    assert machine.ingest([MailboxItem(2, CANCEL_SIGNAL, None, None)]) == [CANCEL_SIGNAL]
    cancel = machine.pending.journal[-1]
    assert (cancel.entry_type, cancel.command_index, cancel.completes, cancel.completed) == ("Cancel", None, CANCEL_SIGNAL, True)
    assert machine.cancel_requested() and not machine.is_done(pending)
    for _ in range(2):
        with pytest.raises(TerminalError) as raised:
            machine.raise_if_cancelled()
        assert raised.value.status_code == 409
    assert machine.pending.cancels == ["inv_1pending"]
    replay = JournalMachine(machine.pending.journal)
    assert replay.cancel_requested()
    call(replay, "Call", "x"), call(replay, "Call", "y")
    with pytest.raises(TerminalError):
        replay.raise_if_cancelled()
    assert replay.pending.cancels == ["inv_1pending"]  # the recorded callee, cancelled again harmlessly


def full_batch(tag: str, create: typing.Optional[Submission] = None) -> Batch:
    machine = JournalMachine([], create=create)
    machine.set_state(SERVICE, KEY, tag, b"1", None)
    call(machine, "Call", f"inv_1{tag}")
    machine.complete_awakeable(machine.awakeable(CALLER)[1], b"1", None)
    machine.promise_get(tag, False, (SERVICE, tag))
    machine.promise_complete(tag, b"1", None, (SERVICE, tag))
    machine.attach(f"inv_1{tag}")
    machine.cancel_invocation(f"inv_1{tag}")
    machine.ingest([MailboxItem(7, None, None, None)])
    return machine.pending


def test_a_failed_flush_is_merged_back_ahead_of_what_came_since() -> None:
    machine = JournalMachine([])
    machine.pending = full_batch("a", create=submission("inv_1self"))
    failed = machine.take_batch()
    failed.outcome = object()  # type: ignore[assignment]
    expected_first = Batch(**{**vars(failed), "outcome": None})
    machine.pending = full_batch("b")
    since = machine.pending
    machine.restore(failed)
    merged = machine.pending
    assert merged.outcome is None and merged.create == expected_first.create
    assert merged.promise_key == expected_first.promise_key
    for field in ("journal", "state", "submissions", "consumed", "resolutions", "promise_gets",
                  "promise_completions", "attaches", "cancels"):
        assert getattr(merged, field) == getattr(expected_first, field) + getattr(since, field), field
        assert getattr(since, field), field  # every kind of write was there to be kept


def test_a_database_step_that_did_not_commit_gives_back_all_but_its_own_entry() -> None:
    machine = JournalMachine([])
    machine.set_state(SERVICE, KEY, "count", b"1", None)
    command, _ = machine.issue("Run", "insert", IN_TRANSACTION)
    row = machine.journal_run(command, "insert", Result(b"1"), IN_TRANSACTION)
    sealed = machine.take_batch()
    machine.restore(sealed, without=row)
    assert [r.entry_type for r in machine.pending.journal] == ["SetState"]
    assert len(machine.pending.state) == 1 and not machine.is_done(command)


def test_combinators_see_completion_positions_not_command_order() -> None:
    machine = JournalMachine([])
    slow, fast = awaited_commands(machine)[:2]
    assert machine.completion_position(slow) is None
    machine.ingest([MailboxItem(1, fast, b"1", None), MailboxItem(2, slow, b"2", None)])
    assert machine.completion_position(fast) < machine.completion_position(slow)  # type: ignore[operator]
    replay = JournalMachine(machine.pending.journal)
    assert replay.completion_position(fast) < replay.completion_position(slow)  # type: ignore[operator]


def test_the_state_overlay_answers_without_a_read_and_is_handed_on() -> None:
    machine = JournalMachine([], state=None)
    assert machine.get_state("a", None)[2:] == (False, None)  # unknown: the context reads it
    machine.set_state(SERVICE, KEY, "a", b"1", None)
    assert machine.get_state("a", None)[2:] == (True, b"1")
    assert machine.state.known() is None  # the rest of the stored state is not known
    machine.state.loaded = {"b": b"2", "c": b"3"}
    machine.clear_state(SERVICE, KEY, "c", None)
    assert machine.state.known() == {"a": b"1", "b": b"2"}
    assert machine.journal_state_keys(machine.state_keys(None)[0], None, machine.state.loaded) == ["a", "b"]
    machine.clear_all_state(SERVICE, KEY, None)
    machine.set_state(SERVICE, KEY, "d", b"4", None)
    assert machine.state.known() == {"d": b"4"} and machine.get_state("b", None)[2:] == (True, None)


def test_a_closed_machine_refuses_commands() -> None:
    machine = JournalMachine([])
    machine.closed = True
    with pytest.raises(SdkInternalException):
        machine.issue("Run", "late")


def test_a_combinator_sees_completions_one_at_a_time_in_journal_order() -> None:
    machine = JournalMachine([])
    first, second, third = (machine.awakeable(CALLER)[0] for _ in range(3))
    machine.ingest([MailboxItem(1, third, b"3", None), MailboxItem(2, first, b"1", None)])
    assert [machine.visible_position(c) for c in (first, second, third)] == [None, None, None]
    assert machine.reveal([first, second]) is True  # the earliest among those asked: first, after third
    assert machine.visible_position(third) is not None  # journaled before it: seen on the way
    assert machine.visible_position(first) is not None
    assert machine.reveal([second]) is False  # not completed: nothing more is seen
    assert machine.visible_position(second) is None
