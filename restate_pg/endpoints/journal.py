"""`EndpointJournal`: one attempt of an invocation that runs on an SDK endpoint, as journal rows.

The SDK endpoint runs the state machine (Restate's shared core); the server's part is to replay
the journal to it and to turn each command it sends into restate-pg's writes: journal rows (each
command row keeps the message as the endpoint sent it, replayed byte for byte), state operations,
submissions, promise and attach requests, signals. Notifications are rows too (`completes` names
the command they complete; signals have a negative `completes`, minus their index, or a name),
stored in the order they arrived, since the SDK must see them in that order again on replay.

No I/O here: `endpoints/attempt.py` does the HTTP exchange and the flushes, so that the
translation is tested without PostgreSQL or an endpoint (tests/test_endpoint_journal.py).
"""

from __future__ import annotations

import json
import typing
from datetime import datetime, timezone

from google.protobuf.message import Message

from restate_pg.core.ids import idempotent_invocation_id, new_invocation_id, parse_awakeable_id, workflow_invocation_id
from restate_pg.core.records import (
    CANCEL_SIGNAL,
    Batch,
    Failure,
    FlushResult,
    InvocationRecord,
    JournalRow,
    MailboxItem,
    PromiseCompletion,
    PromiseGet,
    Resolution,
    Signal,
    StateOp,
    Submission,
)
from restate_pg.api.errors import TerminalError
from restate_pg.endpoints import notifications as notes
from restate_pg.endpoints.targets import CallTarget, Targets
from restate_pg.protocol import service_protocol_pb2 as pb
from restate_pg.protocol.awakeables import awakeable_signal
from restate_pg.protocol.errors import ProtocolViolation
from restate_pg.protocol.framing import MessageType as T
from restate_pg.protocol.messages import ENTRY_TYPES, MESSAGE_TYPES_BY_ENTRY_TYPE
from restate_pg.api.flow import FlowOptions

#: A command's result known as it arrives: journaled right after it.
Result = typing.Tuple[typing.Optional[bytes], typing.Optional[Failure]]

#: A message to send to the endpoint: its type and the message (or its bytes, as recorded).
Outgoing = typing.Tuple[int, typing.Union[Message, bytes]]

#: The journal entry type of a signal's notification (a named one, or an SDK awakeable's).
SIGNAL_ENTRY = "Signal"


class EndpointJournal:
    """The journal of one attempt: what was recorded, what the endpoint adds, what to write."""

    def __init__(
        self,
        invocation: InvocationRecord,
        rows: typing.Sequence[JournalRow],
        targets: Targets,
        state: typing.Optional[typing.Dict[str, bytes]] = None,
        clock: typing.Optional[typing.Callable[[], datetime]] = None,
    ) -> None:
        self.invocation = invocation
        #: Stamps each new entry (`JournalRow.appended_at`): a timer's completion then says when
        #: the timer fired, not when the group commit that stored it began.
        self._clock = clock
        self.targets = targets
        self.rows: typing.List[JournalRow] = sorted(rows, key=lambda row: row.index)
        #: Command rows by number (the endpoint's command index: the input is 0).
        self.commands: typing.Dict[int, JournalRow] = {}
        #: The command each completion id belongs to.
        self.by_completion: typing.Dict[int, int] = {}
        #: Commands with a result, and signals received (minus their index, or their name).
        self.completed: typing.Set[int] = set()
        self.signals: typing.Set[typing.Union[int, str]] = set()
        #: The sleeps not yet fired, by command number: their wake-up times.
        self.sleeping: typing.Dict[int, datetime] = {}
        for row in self.rows:
            self._learn(row)
        self.next_index = max((row.index for row in self.rows), default=0) + 1
        self.next_command = max(self.commands, default=0) + 1
        #: What the next flush writes.
        self.pending = Batch()
        #: Notifications for the endpoint that it has not seen yet (sent in-stream, or by replay).
        self.outbox: typing.List[Outgoing] = []
        #: The key's state as the endpoint sees it (None: not loaded, the handler reads lazily).
        self.state = state
        #: The invocation's result, once the endpoint sent its Output command.
        self.output: typing.Optional[typing.Tuple[typing.Optional[bytes], typing.Optional[Failure]]] = None

    # -- what is recorded ----------------------------------------------------------------------

    def _learn(self, row: JournalRow) -> None:
        if row.command_index is not None:
            self.commands[row.command_index] = row
            params = row.params or {}
            if "completion_id" in params:
                self.by_completion[params["completion_id"]] = row.command_index
            if row.completed:
                self.completed.add(row.command_index)
            elif row.entry_type == "Sleep" and row.sleep_wakeup_at is not None:
                self.sleeping[row.command_index] = row.sleep_wakeup_at
        elif row.completes is not None and row.completes > 0:
            self.completed.add(row.completes)
            self.sleeping.pop(row.completes, None)
        elif row.completes is not None:
            self.signals.add(row.completes)
        elif (row.params or {}).get("signal_name") is not None:
            self.signals.add(row.params["signal_name"])  # type: ignore[index]

    def _append(self, row: JournalRow, at: typing.Optional[datetime] = None) -> JournalRow:
        if self._clock is not None:
            row.appended_at = at or self._clock()
        self.pending.journal.append(row)
        self.rows.append(row)
        self._learn(row)
        return row

    def _position(self) -> int:
        index = self.next_index
        self.next_index += 1
        return index

    def replay(self) -> typing.List[Outgoing]:
        """Every stored entry, as the endpoint replays it: the input command, then each command as
        it was sent and each notification, in the order they were stored."""
        messages: typing.List[Outgoing] = [(T.INPUT_COMMAND, notes.input_command(self.invocation))]
        for row in self.rows:
            messages.extend(self._as_messages(row))
        self.outbox.clear()  # the replay carries them
        return messages

    def _as_messages(self, row: JournalRow) -> typing.List[Outgoing]:
        if row.command_index is not None:
            if row.message is None:
                raise ProtocolViolation(f"journal entry {row.index} was not written by an SDK endpoint")
            out: typing.List[Outgoing] = [(MESSAGE_TYPES_BY_ENTRY_TYPE[row.entry_type], row.message)]
            params = row.params or {}
            if "id_completion" in params:  # written with the call: its callee's id
                out.append(notes.invocation_id(params["id_completion"], params["invocation_id"]))
            return out
        if row.completes is not None and row.completes > 0:
            command = self.commands[row.completes]
            return [notes.completion(command.entry_type, (command.params or {})["completion_id"], row)]
        if row.completes is not None:
            return [notes.signal(-row.completes, None, row)]
        return [notes.signal(None, (row.params or {})["signal_name"], row)]

    # -- commands from the endpoint -------------------------------------------------------------

    def on_command(self, kind: int, message: Message, raw: bytes, now: datetime) -> None:
        """Journal a command the endpoint sent, and queue the writes and notifications it implies."""
        number = self.next_command
        self.next_command += 1
        entry_type = ENTRY_TYPES[kind]  # type: ignore[index]
        name = getattr(message, "name", None) or None
        params: typing.Dict[str, typing.Any] = {}
        completion = getattr(message, "result_completion_id", None)
        if completion:
            params["completion_id"] = completion
        row = JournalRow(index=self._position(), command_index=number, completes=None, entry_type=entry_type,
                         name=name, params=params, message=raw)
        handler = _HANDLERS.get(kind)
        if handler is None:
            raise ProtocolViolation(f"unexpected command {entry_type} from the endpoint")
        result = handler(self, number, row, message, now)
        if not row.params:
            row.params = None
        self._append(row)
        if result is not None:  # known at once: journaled right after the command
            self._complete(number, *result)

    def _output(self, number: int, row: JournalRow, msg: Message, now: datetime) -> typing.Optional[Result]:
        value, failure = notes.result_of(msg)
        row.completed, row.value, row.failure = True, value, failure
        self.output = (value, failure)

    def _eager_state(self, number: int, row: JournalRow, msg: Message, now: datetime) -> typing.Optional[Result]:
        row.completed = True
        if msg.HasField("value"):
            row.value = msg.value.content
        if hasattr(msg, "key"):
            row.params["name"] = _state_name(msg.key)  # type: ignore[index]

    def _eager_keys(self, number: int, row: JournalRow, msg: Message, now: datetime) -> typing.Optional[Result]:
        row.completed = True
        row.value = json.dumps([_state_name(k) for k in msg.value.keys]).encode()

    def _set_state(self, number: int, row: JournalRow, msg: Message, now: datetime) -> typing.Optional[Result]:
        name = _state_name(msg.key)
        row.completed, row.value, row.params["name"] = True, msg.value.content, name  # type: ignore[index]
        self._state_op(StateOp("set", name, msg.value.content))

    def _clear_state(self, number: int, row: JournalRow, msg: Message, now: datetime) -> typing.Optional[Result]:
        name = _state_name(msg.key)
        row.completed, row.params["name"] = True, name  # type: ignore[index]
        self._state_op(StateOp("clear", name))

    def _clear_all_state(self, number: int, row: JournalRow, msg: Message, now: datetime) -> typing.Optional[Result]:
        row.completed = True
        self._state_op(StateOp("clear_all"))

    def _state_op(self, op: StateOp) -> None:
        invocation = self.invocation
        if invocation.key is None:
            raise ProtocolViolation("state commands need a virtual object or workflow key")
        self.pending.state.append((invocation.service, invocation.key, op))
        if self.state is not None:
            if op.kind == "set":
                self.state[op.name or ""] = op.value or b""
            elif op.kind == "clear":
                self.state.pop(op.name or "", None)
            else:
                self.state.clear()

    def _lazy_state(self, number: int, row: JournalRow, msg: Message, now: datetime) -> typing.Optional[Result]:
        row.params["name"] = _state_name(msg.key)  # type: ignore[index]
        return self._known_state().get(row.params["name"]), None  # type: ignore[index]

    def _lazy_keys(self, number: int, row: JournalRow, msg: Message, now: datetime) -> typing.Optional[Result]:
        return json.dumps(sorted(self._known_state())).encode(), None

    def _known_state(self) -> typing.Dict[str, bytes]:
        if self.state is None:
            raise ProtocolViolation("lazy state read before the state was loaded")  # the attempt loads it first
        return self.state

    def _sleep(self, number: int, row: JournalRow, msg: Message, now: datetime) -> typing.Optional[Result]:
        row.sleep_wakeup_at = datetime.fromtimestamp(msg.wake_up_time / 1000, tz=now.tzinfo or timezone.utc)

    def _call(self, number: int, row: JournalRow, msg: Message, now: datetime) -> typing.Optional[Result]:
        one_way = isinstance(msg, pb.OneWayCallCommandMessage)
        key = msg.key or None
        target = self.targets.lookup(msg.service_name, msg.handler_name)
        params = typing.cast(typing.Dict[str, typing.Any], row.params)
        params.update(service=msg.service_name, handler=msg.handler_name, key=key,
                      id_completion=msg.invocation_id_notification_idx)
        try:  # v7: the TypeScript SDK's ctx.scope(...) and limitKey, restate-sdk's ctx.scope(...)
            flow = FlowOptions(_optional(msg, "scope"), _optional(msg, "limit_key"))
        except TerminalError as exc:
            flow, refused = None, Failure(400, exc.message)
        else:
            # Restate fails the call: the target does not exist
            refused = None if target is not None else Failure(
                404, f"service '{msg.service_name}' or its handler '{msg.handler_name}' not found")
        if target is None or flow is None:
            # the SDKs need an id (an empty one is refused as missing): one no invocation will have
            params["invocation_id"] = new_invocation_id(key)
            self.outbox.append(notes.invocation_id(msg.invocation_id_notification_idx, params["invocation_id"]))
            if one_way and flow is None:  # a send that cannot say so: the attempt fails (retried, 571)
                raise ProtocolViolation(typing.cast(Failure, refused).message)
            if one_way:
                row.completed = True
                return None
            return None, refused
        idempotency_key = msg.idempotency_key if msg.HasField("idempotency_key") else None
        delay_ms = None
        if one_way and msg.invoke_time:
            delay_ms = max(0, msg.invoke_time - int(now.timestamp() * 1000)) or None
        submission = target.submission(
            key, msg.parameter, idempotency_key=idempotency_key,
            headers={h.key: h.value for h in msg.headers}, delay_ms=delay_ms,
            caller_id=None if one_way else self.invocation.id, caller_command=None if one_way else number,
            flow=flow,
        )
        params["invocation_id"] = submission.id
        self.pending.submissions.append(submission)
        self.outbox.append(notes.invocation_id(msg.invocation_id_notification_idx, submission.id))
        if one_way:
            row.completed = True

    def _promise_get(self, number: int, row: JournalRow, msg: Message, now: datetime) -> typing.Optional[Result]:
        row.params["name"] = msg.key  # type: ignore[index]
        self.pending.promise_key = self._promise_key()
        self.pending.promise_gets.append(PromiseGet(msg.key, number, peek=isinstance(msg, pb.PeekPromiseCommandMessage)))

    def _promise_complete(self, number: int, row: JournalRow, msg: Message, now: datetime) -> typing.Optional[Result]:
        row.params["name"] = msg.key  # type: ignore[index]
        if msg.HasField("completion_failure"):
            value, failure = None, notes.failure_of(msg.completion_failure)
        else:
            value, failure = msg.completion_value.content, None
        self.pending.promise_key = self._promise_key()
        self.pending.promise_completions.append(PromiseCompletion(msg.key, number, value, failure))

    def _promise_key(self) -> typing.Tuple[str, str]:
        if self.invocation.key is None:
            raise ProtocolViolation("promise commands need a workflow key")
        return self.invocation.service, self.invocation.key

    def _run(self, number: int, row: JournalRow, msg: Message, now: datetime) -> typing.Optional[Result]:
        pass  # its result arrives as a proposal, journaled where it arrives

    def _attach(self, number: int, row: JournalRow, msg: Message, now: datetime) -> typing.Optional[Result]:
        target = self._target_invocation(msg)
        row.params["invocation_id"] = target  # type: ignore[index]
        self.pending.attaches.append((target, number))

    def _output_of(self, number: int, row: JournalRow, msg: Message, now: datetime) -> typing.Optional[Result]:
        """Attach, but an answer that the target has not completed yet completes it empty."""
        self._attach(number, row, msg, now)

    def _target_invocation(self, msg: Message) -> str:
        which = msg.WhichOneof("target")
        if which == "invocation_id":
            return msg.invocation_id
        if which == "workflow_target":
            t = msg.workflow_target
            return workflow_invocation_id(t.workflow_name, t.workflow_key, _optional(t, "scope"))
        if which == "idempotent_request_target":
            t = msg.idempotent_request_target
            key = t.service_key if t.HasField("service_key") else None
            return idempotent_invocation_id(t.service_name, key, t.handler_name, t.idempotency_key, _optional(t, "scope"))
        raise ProtocolViolation("attach/get output without a target")

    def _send_signal(self, number: int, row: JournalRow, msg: Message, now: datetime) -> typing.Optional[Result]:
        row.completed = True
        row.params["invocation_id"] = msg.target_invocation_id  # type: ignore[index]
        value, failure = notes.result_of(msg)
        if msg.WhichOneof("signal_id") == "idx":
            if msg.idx == -CANCEL_SIGNAL:
                self.pending.cancels.append(msg.target_invocation_id)
                return
            self.pending.signals.append(Signal(msg.target_invocation_id, index=msg.idx, value=value, failure=failure))
        else:
            self.pending.signals.append(Signal(msg.target_invocation_id, name=msg.name, value=value, failure=failure))

    def _complete_awakeable(self, number: int, row: JournalRow, msg: Message, now: datetime) -> typing.Optional[Result]:
        row.completed = True
        row.params["id"] = msg.awakeable_id  # type: ignore[index]
        value, failure = notes.result_of(msg)
        signal = awakeable_signal(msg.awakeable_id, value, failure)
        if signal is not None:  # an SDK endpoint's awakeable
            self.pending.signals.append(signal)
            return
        try:  # an awakeable of an in-process handler
            target, command = parse_awakeable_id(msg.awakeable_id)
        except ValueError:
            raise ProtocolViolation(f"bad awakeable id '{msg.awakeable_id}'") from None
        self.pending.resolutions.append(Resolution(msg.awakeable_id, target, command, value, failure))

    # -- results ------------------------------------------------------------------------------

    def _complete(self, command: int, value: typing.Optional[bytes], failure: typing.Optional[Failure],
                  at: typing.Optional[datetime] = None) -> None:
        """Journal a result of `command` (that arrived `at`, if not now) and queue its notification."""
        if command in self.completed:
            return
        entry_type = self.commands[command].entry_type if command in self.commands else "Run"
        row = self._append(JournalRow(index=self._position(), command_index=None, completes=command,
                                      entry_type=entry_type, completed=True, value=value, failure=failure), at)
        if command in self.commands:
            completion_id = (self.commands[command].params or {})["completion_id"]
            self.outbox.append(notes.completion(entry_type, completion_id, row))

    def propose_run(self, message: pb.ProposeRunCompletionMessage, ack: bool = False) -> int:
        """Journal a `ctx.run` result where its proposal arrived; the command it completes. With
        `ack` (V7, asked for), the endpoint is answered with an acknowledgement instead of the
        notification, which takes the acknowledgement's place on replay."""
        command = self.by_completion.get(message.result_completion_id)
        if command is None or self.commands[command].entry_type != "Run":
            raise ProtocolViolation(f"run completion proposed for unknown completion id {message.result_completion_id}")
        value, failure = notes.result_of(message)
        self._complete(command, value, failure)
        if ack and self.outbox:
            self.outbox[-1] = (T.PROPOSE_RUN_COMPLETION_ACK,
                               pb.ProposeRunCompletionAckMessage(completion_id=message.result_completion_id))
        return command

    def awaits_answer(self) -> bool:
        """Whether the endpoint may wait for what the next flush stores or answers."""
        pending = self.pending
        return bool(self.outbox or pending.promise_gets or pending.promise_completions or pending.attaches)

    def take_outbox(self) -> typing.List[Outgoing]:
        outgoing, self.outbox = self.outbox, []
        return outgoing

    def ingest(self, items: typing.Iterable[MailboxItem]) -> None:
        """Journal the mailbox: results of calls, promises and attaches, signals, the cancel signal."""
        for item in items:
            self.pending.consumed.append(item.seq)
            if item.signal_name is not None:
                self._signal(None, item.signal_name, item.value, item.failure)
            elif item.command_index is not None and item.command_index < 0:
                self._signal(-item.command_index, None, item.value, item.failure)
            elif item.command_index is not None and item.command_index in self.commands:
                self._complete(item.command_index, item.value, item.failure)

    def _signal(self, index: typing.Optional[int], name: typing.Optional[str], value: typing.Optional[bytes],
                failure: typing.Optional[Failure]) -> None:
        if (name if index is None else -index) in self.signals:
            return
        params = {"signal_name": name} if name is not None else None
        entry_type = "Cancel" if index == -CANCEL_SIGNAL else SIGNAL_ENTRY
        row = self._append(JournalRow(index=self._position(), command_index=None,
                                      completes=None if index is None else -index, entry_type=entry_type,
                                      params=params, completed=True, value=value, failure=failure))
        self.outbox.append(notes.signal(index, name, row))

    def fire_timers(self, now: datetime) -> None:
        """Complete the sleeps due at `now` (when the timer fired), stamped with it."""
        for number in sorted(number for number, due in self.sleeping.items() if due <= now):
            self._complete(number, None, None, now)

    def answer(self, result: FlushResult) -> None:
        """Journal what a flush answered to promise and attach commands (and to calls that
        attached to an existing invocation)."""
        for command, outcome in sorted(result.answers.items()):
            command = int(command)
            if command in self.completed or command not in self.commands:
                continue
            answered = notes.answer(outcome, self.commands[command].entry_type)
            if answered is not None:
                self._complete(command, *answered)

    def next_timer(self) -> typing.Optional[datetime]:
        """When the earliest pending sleep is due."""
        return min(self.sleeping.values(), default=None)

    def take_batch(self) -> Batch:
        batch, self.pending = self.pending, Batch()
        return batch

    def restore(self, batch: Batch) -> None:
        """A flush of `batch` did not happen: write it with the next one."""
        batch.outcome = None
        self.pending = batch.followed_by(self.pending)

    # -- suspension ---------------------------------------------------------------------------

    def resumable(self, completions: typing.AbstractSet[int], signals: typing.AbstractSet[typing.Union[int, str]]) -> bool:
        """Whether a notification the endpoint has not seen yet is one it waits for (any of them:
        if its combinator needs more, it suspends again)."""
        for _, message in self.outbox:
            if notes.awaited_by(message, completions, signals):
                return True
        return False

def _optional(msg: Message, field: str) -> typing.Optional[str]:
    """A v7 `optional string` field: None when the SDK left it out (or sent it empty)."""
    return (getattr(msg, field) or None) if msg.HasField(field) else None


def _state_name(key: bytes) -> str:
    try:
        return key.decode("utf-8")
    except UnicodeDecodeError:
        raise ProtocolViolation("state keys must be UTF-8") from None


_Handler = typing.Callable[[EndpointJournal, int, JournalRow, Message, datetime], typing.Optional[Result]]
_HANDLERS: typing.Dict[int, _Handler] = {
    T.OUTPUT_COMMAND: EndpointJournal._output,
    T.GET_EAGER_STATE_COMMAND: EndpointJournal._eager_state,
    T.GET_EAGER_STATE_KEYS_COMMAND: EndpointJournal._eager_keys,
    T.SET_STATE_COMMAND: EndpointJournal._set_state,
    T.CLEAR_STATE_COMMAND: EndpointJournal._clear_state,
    T.CLEAR_ALL_STATE_COMMAND: EndpointJournal._clear_all_state,
    T.GET_LAZY_STATE_COMMAND: EndpointJournal._lazy_state,
    T.GET_LAZY_STATE_KEYS_COMMAND: EndpointJournal._lazy_keys,
    T.SLEEP_COMMAND: EndpointJournal._sleep,
    T.CALL_COMMAND: EndpointJournal._call,
    T.ONE_WAY_CALL_COMMAND: EndpointJournal._call,
    T.GET_PROMISE_COMMAND: EndpointJournal._promise_get,
    T.PEEK_PROMISE_COMMAND: EndpointJournal._promise_get,
    T.COMPLETE_PROMISE_COMMAND: EndpointJournal._promise_complete,
    T.RUN_COMMAND: EndpointJournal._run,
    T.ATTACH_INVOCATION_COMMAND: EndpointJournal._attach,
    T.GET_INVOCATION_OUTPUT_COMMAND: EndpointJournal._output_of,
    T.SEND_SIGNAL_COMMAND: EndpointJournal._send_signal,
    T.COMPLETE_AWAKEABLE_COMMAND: EndpointJournal._complete_awakeable,
}
