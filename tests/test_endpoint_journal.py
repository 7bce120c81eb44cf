"""The endpoint journal on its own: protocol messages in, journal rows and writes out, and the
replay an endpoint is sent. No PostgreSQL, no endpoint (those are in tests/test_endpoints_*.py).

Each test drives a first attempt, then builds a second journal from the rows the first wrote, as
the next attempt would load them, and checks what the endpoint is replayed."""

from __future__ import annotations

import json
import typing
from datetime import datetime, timedelta, timezone

import pytest

from restate_pg.core.ids import new_invocation_id
from restate_pg.core.records import CANCEL_SIGNAL, Failure, FlushResult, InvocationRecord, JournalRow, MailboxItem
from restate_pg.endpoints.journal import EndpointJournal
from restate_pg.protocol.awakeables import awakeable_signal
from restate_pg.endpoints.suspension import awaited
from restate_pg.endpoints.targets import CallTarget
from restate_pg.protocol import service_protocol_pb2 as pb
from restate_pg.protocol.awakeables import sdk_awakeable_id
from restate_pg.protocol.errors import ProtocolViolation
from restate_pg.protocol.framing import MessageType as T

pytestmark = pytest.mark.memory

NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)
ME = new_invocation_id("cart-1")


class Registry:
    """Two registered handlers: a plain service's and a virtual object's."""

    def lookup(self, service: str, handler: str) -> typing.Optional[CallTarget]:
        if (service, handler) == ("Stock", "reserve"):
            return CallTarget("Stock", "reserve", "service", None)
        if (service, handler) == ("Counter", "add"):
            return CallTarget("Counter", "add", "virtual_object", "exclusive")
        return None


def invocation(key: typing.Optional[str] = "cart-1") -> InvocationRecord:
    return InvocationRecord(id=ME, service="Cart", handler="checkout", key=key, input=b'{"n": 1}',
                            headers={"x-b": "2", "x-a": "1"}, idempotency_key=None, caller_id=None,
                            caller_command=None, status="invoked")


def journal(rows: typing.Sequence[JournalRow] = (), state: typing.Optional[typing.Dict[str, bytes]] = None,
            key: typing.Optional[str] = "cart-1") -> EndpointJournal:
    return EndpointJournal(invocation(key), rows, Registry(), {} if state is None else state)


def send(j: EndpointJournal, kind: int, message: typing.Any) -> None:
    j.on_command(kind, message, message.SerializeToString(), NOW)


def kinds(messages: typing.Sequence[typing.Tuple[int, typing.Any]]) -> typing.List[str]:
    return [T(kind).name for kind, _ in messages]


def test_the_replay_starts_with_the_input_and_keeps_commands_byte_for_byte() -> None:
    first = journal()
    set_state = pb.SetStateCommandMessage(key=b"items", value=pb.Value(content=b"[1]"), name="save")
    send(first, T.SET_STATE_COMMAND, set_state)
    batch = first.take_batch()
    assert [(s, k, op.kind, op.name, op.value) for s, k, op in batch.state] == [("Cart", "cart-1", "set", "items", b"[1]")]
    replay = journal(batch.journal).replay()
    assert kinds(replay) == ["INPUT_COMMAND", "SET_STATE_COMMAND"]
    command = replay[0][1]
    assert command.value.content == b'{"n": 1}' and [(h.key, h.value) for h in command.headers] == [("x-a", "1"), ("x-b", "2")]
    assert replay[1][1] == set_state.SerializeToString()  # as the endpoint sent it


def test_a_call_gets_its_callee_id_at_once_and_its_result_from_the_mailbox() -> None:
    first = journal()
    call = pb.CallCommandMessage(service_name="Stock", handler_name="reserve", parameter=b'"x"',
                                 invocation_id_notification_idx=1, result_completion_id=2)
    send(first, T.CALL_COMMAND, call)
    (submission,) = first.pending.submissions
    assert (submission.caller_id, submission.caller_command, submission.input) == (ME, 1, b'"x"')
    (sent,) = first.take_outbox()
    assert sent[0] == T.CALL_INVOCATION_ID_COMPLETION and sent[1].invocation_id == submission.id
    rows = first.take_batch().journal
    second = journal(rows)
    second.ingest([MailboxItem(7, 1, b'"reserved"', None)])
    assert second.pending.consumed == [7]
    replay = journal(rows + second.take_batch().journal).replay()
    assert kinds(replay) == ["INPUT_COMMAND", "CALL_COMMAND", "CALL_INVOCATION_ID_COMPLETION", "CALL_COMPLETION"]
    assert (replay[3][1].completion_id, replay[3][1].value.content) == (2, b'"reserved"')


def test_a_call_to_an_unknown_handler_fails_with_404() -> None:
    first = journal()
    send(first, T.CALL_COMMAND, pb.CallCommandMessage(service_name="Nope", handler_name="x",
                                                      invocation_id_notification_idx=1, result_completion_id=2))
    assert first.pending.submissions == []
    outgoing = first.take_outbox()
    assert kinds(outgoing) == ["CALL_INVOCATION_ID_COMPLETION", "CALL_COMPLETION"]
    assert outgoing[1][1].failure.code == 404


def test_a_delayed_send_is_scheduled_by_its_invoke_time() -> None:
    first = journal()
    later = NOW + timedelta(seconds=30)
    send(first, T.ONE_WAY_CALL_COMMAND, pb.OneWayCallCommandMessage(
        service_name="Counter", handler_name="add", key="k", parameter=b"1", invocation_id_notification_idx=1,
        invoke_time=int(later.timestamp() * 1000), idempotency_key="once"))
    (submission,) = first.pending.submissions
    assert (submission.delay_ms, submission.key, submission.handler_ty, submission.caller_id) == (30_000, "k", "exclusive", None)
    assert submission.idempotency_key == "once"


def test_a_run_is_journaled_where_its_proposal_arrived_and_acknowledged_in_v7() -> None:
    first = journal()
    send(first, T.RUN_COMMAND, pb.RunCommandMessage(result_completion_id=1, name="charge"))
    send(first, T.SET_STATE_COMMAND, pb.SetStateCommandMessage(key=b"a", value=pb.Value(content=b"1")))
    first.propose_run(pb.ProposeRunCompletionMessage(result_completion_id=1, value=b"42"), ack=True)
    (ack,) = first.take_outbox()
    assert ack[0] == T.PROPOSE_RUN_COMPLETION_ACK and ack[1].completion_id == 1
    replay = journal(first.take_batch().journal).replay()
    assert kinds(replay) == ["INPUT_COMMAND", "RUN_COMMAND", "SET_STATE_COMMAND", "RUN_COMPLETION"]
    assert replay[3][1].value.content == b"42"


def test_a_proposal_for_an_unknown_run_is_a_protocol_violation() -> None:
    with pytest.raises(ProtocolViolation):
        journal().propose_run(pb.ProposeRunCompletionMessage(result_completion_id=9, value=b""))


def test_sleeps_fire_when_due_and_say_when_the_next_is() -> None:
    first = journal()
    wake = NOW + timedelta(seconds=5)
    send(first, T.SLEEP_COMMAND, pb.SleepCommandMessage(wake_up_time=int(wake.timestamp() * 1000), result_completion_id=1))
    assert first.next_timer() == wake
    first.fire_timers(NOW)
    assert first.take_outbox() == []
    first.fire_timers(wake)
    (fired,) = first.take_outbox()
    assert fired[0] == T.SLEEP_COMPLETION and fired[1].HasField("void") and first.next_timer() is None


def test_entries_are_stamped_when_created_and_a_sleep_when_its_timer_fired() -> None:
    ticks = iter(NOW + timedelta(milliseconds=n) for n in range(1, 100))
    stamped = EndpointJournal(invocation(), [], Registry(), {}, clock=lambda: next(ticks))
    wake = NOW + timedelta(seconds=5)
    send(stamped, T.SLEEP_COMMAND, pb.SleepCommandMessage(wake_up_time=int(wake.timestamp() * 1000), result_completion_id=1))
    send(stamped, T.RUN_COMMAND, pb.RunCommandMessage(name="step", result_completion_id=2))
    stamped.propose_run(pb.ProposeRunCompletionMessage(result_completion_id=2, value=b"1"))
    fired_at = wake + timedelta(microseconds=300)
    stamped.fire_timers(fired_at)
    sleep, run, ran, slept = stamped.take_batch().journal
    assert (sleep.appended_at, run.appended_at, ran.appended_at) == tuple(NOW + timedelta(milliseconds=n) for n in (1, 2, 3))
    assert slept.completes == sleep.command_index and slept.appended_at == fired_at
    unstamped = journal()  # without a clock: the storing transaction's now()
    send(unstamped, T.RUN_COMMAND, pb.RunCommandMessage(name="step", result_completion_id=1))
    assert [row.appended_at for row in unstamped.take_batch().journal] == [None]


def test_lazy_state_is_answered_from_the_state_with_this_attempts_writes() -> None:
    first = journal(state={"count": b"1", "other": b"x"})
    send(first, T.SET_STATE_COMMAND, pb.SetStateCommandMessage(key=b"count", value=pb.Value(content=b"2")))
    send(first, T.GET_LAZY_STATE_COMMAND, pb.GetLazyStateCommandMessage(key=b"count", result_completion_id=1))
    send(first, T.CLEAR_STATE_COMMAND, pb.ClearStateCommandMessage(key=b"other"))
    send(first, T.GET_LAZY_STATE_KEYS_COMMAND, pb.GetLazyStateKeysCommandMessage(result_completion_id=2))
    send(first, T.GET_LAZY_STATE_COMMAND, pb.GetLazyStateCommandMessage(key=b"missing", result_completion_id=3))
    value, keys, missing = first.take_outbox()
    assert value[1].value.content == b"2" and list(keys[1].state_keys.keys) == [b"count"]
    assert missing[1].HasField("void")


def test_state_commands_need_a_key() -> None:
    with pytest.raises(ProtocolViolation):
        send(journal(key=None), T.CLEAR_ALL_STATE_COMMAND, pb.ClearAllStateCommandMessage())


def test_signals_arrive_once_in_order_by_index_by_name_and_cancel() -> None:
    first = journal()
    first.ingest([MailboxItem(1, -17, b'"yes"', None), MailboxItem(2, None, None, Failure(500, "no"), "approval"),
                  MailboxItem(3, -17, b'"again"', None), MailboxItem(4, CANCEL_SIGNAL, None, None)])
    outgoing = first.take_outbox()
    assert [(m.idx, m.name) for _, m in outgoing] == [(17, ""), (0, "approval"), (1, "")]
    assert outgoing[1][1].failure.message == "no"
    replay = journal(first.take_batch().journal).replay()
    assert kinds(replay) == ["INPUT_COMMAND"] + ["SIGNAL_NOTIFICATION"] * 3


def test_completing_an_sdk_awakeable_signals_its_invocation() -> None:
    other = new_invocation_id()
    awakeable = sdk_awakeable_id(other.encode("ascii"), 17)
    first = journal()
    send(first, T.COMPLETE_AWAKEABLE_COMMAND, pb.CompleteAwakeableCommandMessage(awakeable_id=awakeable, value=pb.Value(content=b"1")))
    (signal,) = first.pending.signals
    assert (signal.invocation_id, signal.index, signal.value) == (other, 17, b"1")
    assert awakeable_signal("sign_1bm90LWFuLWlk", None, None) is None  # not an invocation's id
    with pytest.raises(ProtocolViolation):
        send(first, T.COMPLETE_AWAKEABLE_COMMAND, pb.CompleteAwakeableCommandMessage(awakeable_id="garbage"))


def test_send_signal_cancel_becomes_a_cancellation() -> None:
    first = journal()
    target = new_invocation_id()
    send(first, T.SEND_SIGNAL_COMMAND, pb.SendSignalCommandMessage(target_invocation_id=target, idx=1, void=pb.Void()))
    send(first, T.SEND_SIGNAL_COMMAND, pb.SendSignalCommandMessage(target_invocation_id=target, name="go", value=pb.Value(content=b"1")))
    assert first.pending.cancels == [target]
    assert [(s.name, s.value) for s in first.pending.signals] == [("go", b"1")]


def test_promises_and_attaches_are_answered_by_the_flush() -> None:
    first = journal()
    send(first, T.GET_PROMISE_COMMAND, pb.GetPromiseCommandMessage(key="approval", result_completion_id=1))
    send(first, T.PEEK_PROMISE_COMMAND, pb.PeekPromiseCommandMessage(key="other", result_completion_id=2))
    send(first, T.COMPLETE_PROMISE_COMMAND, pb.CompletePromiseCommandMessage(
        key="done", completion_value=pb.Value(content=b"1"), result_completion_id=3))
    send(first, T.ATTACH_INVOCATION_COMMAND, pb.AttachInvocationCommandMessage(invocation_id="inv_x", result_completion_id=4))
    assert first.awaits_answer() and first.pending.promise_key == ("Cart", "cart-1")
    first.take_batch()
    first.answer(FlushResult(NOW, answers={1: {"completed": False}, 2: {"completed": False}, 3: "already",
                                           4: {"completed": True, "value": "Ig=="}}))
    outgoing = {m.completion_id: (T(kind).name, m) for kind, m in first.take_outbox()}
    assert sorted(outgoing) == [2, 3, 4]  # the get waits for the promise: its answer comes by the mailbox
    assert outgoing[2][1].HasField("void") and outgoing[3][1].failure.code == 409 and outgoing[4][1].value.content == b'"'


def test_resume_only_for_a_notification_the_endpoint_waits_for_and_has_not_seen() -> None:
    first = journal()
    first.ingest([MailboxItem(1, -17, b"1", None)])
    assert first.resumable(frozenset(), frozenset({17}))
    assert not first.resumable(frozenset({3}), frozenset({18}))
    first.replay()  # sent: seen
    assert not first.resumable(frozenset(), frozenset({17}))


def test_suspensions_of_each_version_name_their_leaves() -> None:
    flat = pb.SuspensionMessageV5(waiting_completions=[1, 2], waiting_signals=[1], waiting_named_signals=["a"])
    assert awaited(flat) == ({1, 2}, {1, "a"})
    tree = pb.SuspensionMessage(awaiting_on=pb.Future(
        waiting_completions=[1], nested_futures=[pb.Future(waiting_signals=[17], waiting_named_signals=["b"])]))
    assert awaited(tree) == ({1}, {17, "b"})


def test_eager_state_reads_and_keys_are_journaled_with_their_results() -> None:
    first = journal(state={"a": b"1"})
    send(first, T.GET_EAGER_STATE_COMMAND, pb.GetEagerStateCommandMessage(key=b"a", value=pb.Value(content=b"1")))
    send(first, T.GET_EAGER_STATE_KEYS_COMMAND, pb.GetEagerStateKeysCommandMessage(value=pb.StateKeys(keys=[b"a"])))
    rows = first.take_batch().journal
    assert [(r.entry_type, r.completed, r.value) for r in rows] == [
        ("GetEagerState", True, b"1"), ("GetEagerStateKeys", True, json.dumps(["a"]).encode())]
    assert first.take_outbox() == []
