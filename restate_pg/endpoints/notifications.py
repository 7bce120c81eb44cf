"""The messages restate-pg sends an SDK endpoint, built from journal rows: the input command,
completions of commands, signals; and the results the endpoint's messages carry, read back."""

from __future__ import annotations

import base64
import json
import typing

from google.protobuf.message import Message

from restate_pg.core.records import Failure, InvocationRecord, JournalRow
from restate_pg.protocol import service_protocol_pb2 as pb
from restate_pg.protocol.framing import MessageType as T

Outgoing = typing.Tuple[int, Message]

#: Each completable command's notification: its type and message class.
_COMPLETIONS: typing.Dict[str, typing.Tuple[int, typing.Any]] = {
    "GetLazyState": (T.GET_LAZY_STATE_COMPLETION, pb.GetLazyStateCompletionNotificationMessage),
    "GetLazyStateKeys": (T.GET_LAZY_STATE_KEYS_COMPLETION, pb.GetLazyStateKeysCompletionNotificationMessage),
    "GetPromise": (T.GET_PROMISE_COMPLETION, pb.GetPromiseCompletionNotificationMessage),
    "PeekPromise": (T.PEEK_PROMISE_COMPLETION, pb.PeekPromiseCompletionNotificationMessage),
    "CompletePromise": (T.COMPLETE_PROMISE_COMPLETION, pb.CompletePromiseCompletionNotificationMessage),
    "Sleep": (T.SLEEP_COMPLETION, pb.SleepCompletionNotificationMessage),
    "Call": (T.CALL_COMPLETION, pb.CallCompletionNotificationMessage),
    "Run": (T.RUN_COMPLETION, pb.RunCompletionNotificationMessage),
    "AttachInvocation": (T.ATTACH_INVOCATION_COMPLETION, pb.AttachInvocationCompletionNotificationMessage),
    "GetInvocationOutput": (T.GET_INVOCATION_OUTPUT_COMPLETION, pb.GetInvocationOutputCompletionNotificationMessage),
}


def input_command(invocation: InvocationRecord) -> pb.InputCommandMessage:
    """Entry 0 of every journal, rebuilt from the invocation's row."""
    return pb.InputCommandMessage(
        headers=[pb.Header(key=k, value=v) for k, v in sorted(invocation.headers.items())],
        value=pb.Value(content=invocation.input),
    )


def invocation_id(completion_id: int, callee: str) -> Outgoing:
    """The callee's id, for a call or a send: written with the command."""
    return T.CALL_INVOCATION_ID_COMPLETION, pb.CallInvocationIdCompletionNotificationMessage(
        completion_id=completion_id, invocation_id=callee)


def completion(entry_type: str, completion_id: int, row: JournalRow) -> Outgoing:
    """The notification of a command's result, as its type spells it."""
    kind, cls = _COMPLETIONS[entry_type]
    message = cls(completion_id=completion_id)
    if entry_type == "GetLazyStateKeys":
        message.state_keys.keys.extend(k.encode() for k in json.loads(row.value or b"[]"))
    elif row.failure is not None:
        message.failure.CopyFrom(failure_message(row.failure))
    elif row.value is not None and entry_type != "Sleep":
        message.value.content = row.value
    elif "void" in cls.DESCRIPTOR.fields_by_name:
        message.void.SetInParent()
    else:  # a result with no void form (a call's empty answer): an empty value
        message.value.content = b""
    return kind, message


def signal(index: typing.Optional[int], name: typing.Optional[str], row: JournalRow) -> Outgoing:
    message = pb.SignalNotificationMessage()
    if index is not None:
        message.idx = index
    else:
        message.name = name or ""
    if row.failure is not None:
        message.failure.CopyFrom(failure_message(row.failure))
    elif row.value is not None:
        message.value.content = row.value
    else:
        message.void.SetInParent()
    return T.SIGNAL_NOTIFICATION, message


def failure_message(failure: Failure) -> pb.Failure:
    return pb.Failure(code=failure.code, message=failure.message,
                      metadata=[pb.FailureMetadata(key=k, value=v) for k, v in (failure.metadata or {}).items()])


def failure_of(message: pb.Failure) -> Failure:
    return Failure(message.code, message.message, {m.key: m.value for m in message.metadata} or None)


def result_of(message: Message) -> typing.Tuple[typing.Optional[bytes], typing.Optional[Failure]]:
    """The value or failure an output, a run proposal, a signal or an awakeable completion carries."""
    which = message.WhichOneof("result")
    if which == "failure":
        return None, failure_of(message.failure)  # type: ignore[attr-defined]
    if which == "value":
        value = message.value  # type: ignore[attr-defined]
        return (value if isinstance(value, bytes) else value.content), None
    return None, None


def answer(outcome: typing.Any, entry_type: str) -> typing.Optional[typing.Tuple[typing.Optional[bytes], typing.Optional[Failure]]]:
    """The result a flush's answer gives a promise, attach or get-output command, or None when
    it comes later (through the mailbox)."""
    if outcome == "completed":
        return None, None
    if outcome == "already":
        return None, Failure(409, "promise was already completed")
    if outcome.get("missing"):
        return None, Failure(404, "invocation not found")
    if outcome.get("completed"):
        code = outcome.get("failure_code")
        if code is not None:
            return None, Failure(code, outcome.get("failure_message") or "", outcome.get("failure_metadata"))
        raw = outcome.get("value")
        return (b"" if raw is None else base64.b64decode(raw)), None
    if entry_type in ("PeekPromise", "GetInvocationOutput"):
        return None, None  # not completed yet: void
    return None


def awaited_by(message: typing.Union[Message, bytes], completions: typing.AbstractSet[int],
               signals: typing.AbstractSet[typing.Union[int, str]]) -> bool:
    """Whether a notification completes one of the awaited completion ids or signals."""
    if isinstance(message, bytes):
        return False
    if isinstance(message, pb.SignalNotificationMessage):
        which = message.WhichOneof("signal_id")
        return (message.idx if which == "idx" else message.name) in signals
    return getattr(message, "completion_id", None) in completions
