"""Frames to protobuf messages and back, and the journal entry type restate-pg stores per command.

The message class of a frame follows from its type code, except for suspensions: V5 and V6
endpoints send the flat SuspensionMessageV5, V7 ones the future tree of SuspensionMessage, under
the same code (V7 reserved the flat fields), so decoding needs the negotiated version.
"""

from __future__ import annotations

import typing

from google.protobuf.message import DecodeError, Message

from restate_pg.protocol import service_protocol_pb2 as pb
from restate_pg.protocol.errors import ProtocolViolation
from restate_pg.protocol.framing import Frame, MessageType, encode_frame, known_type
from restate_pg.protocol.versions import MAX_VERSION, MIN_VERSION

__all__ = ["ENTRY_TYPES", "MESSAGE_TYPES_BY_ENTRY_TYPE", "decode", "encode", "message_type"]

T = MessageType

_CLASSES: typing.Dict[MessageType, typing.Type[Message]] = {
    T.START: pb.StartMessage,
    T.SUSPENSION: pb.SuspensionMessage,
    T.ERROR: pb.ErrorMessage,
    T.END: pb.EndMessage,
    T.COMMAND_ACK: pb.CommandAckMessage,
    T.PROPOSE_RUN_COMPLETION: pb.ProposeRunCompletionMessage,
    T.AWAITING_ON: pb.AwaitingOnMessage,
    T.PROPOSE_RUN_COMPLETION_ACK: pb.ProposeRunCompletionAckMessage,
    T.INPUT_COMMAND: pb.InputCommandMessage,
    T.OUTPUT_COMMAND: pb.OutputCommandMessage,
    T.GET_LAZY_STATE_COMMAND: pb.GetLazyStateCommandMessage,
    T.GET_LAZY_STATE_COMPLETION: pb.GetLazyStateCompletionNotificationMessage,
    T.SET_STATE_COMMAND: pb.SetStateCommandMessage,
    T.CLEAR_STATE_COMMAND: pb.ClearStateCommandMessage,
    T.CLEAR_ALL_STATE_COMMAND: pb.ClearAllStateCommandMessage,
    T.GET_LAZY_STATE_KEYS_COMMAND: pb.GetLazyStateKeysCommandMessage,
    T.GET_LAZY_STATE_KEYS_COMPLETION: pb.GetLazyStateKeysCompletionNotificationMessage,
    T.GET_EAGER_STATE_COMMAND: pb.GetEagerStateCommandMessage,
    T.GET_EAGER_STATE_KEYS_COMMAND: pb.GetEagerStateKeysCommandMessage,
    T.GET_PROMISE_COMMAND: pb.GetPromiseCommandMessage,
    T.GET_PROMISE_COMPLETION: pb.GetPromiseCompletionNotificationMessage,
    T.PEEK_PROMISE_COMMAND: pb.PeekPromiseCommandMessage,
    T.PEEK_PROMISE_COMPLETION: pb.PeekPromiseCompletionNotificationMessage,
    T.COMPLETE_PROMISE_COMMAND: pb.CompletePromiseCommandMessage,
    T.COMPLETE_PROMISE_COMPLETION: pb.CompletePromiseCompletionNotificationMessage,
    T.SLEEP_COMMAND: pb.SleepCommandMessage,
    T.SLEEP_COMPLETION: pb.SleepCompletionNotificationMessage,
    T.CALL_COMMAND: pb.CallCommandMessage,
    T.CALL_COMPLETION: pb.CallCompletionNotificationMessage,
    T.CALL_INVOCATION_ID_COMPLETION: pb.CallInvocationIdCompletionNotificationMessage,
    T.ONE_WAY_CALL_COMMAND: pb.OneWayCallCommandMessage,
    T.SEND_SIGNAL_COMMAND: pb.SendSignalCommandMessage,
    T.RUN_COMMAND: pb.RunCommandMessage,
    T.RUN_COMPLETION: pb.RunCompletionNotificationMessage,
    T.ATTACH_INVOCATION_COMMAND: pb.AttachInvocationCommandMessage,
    T.ATTACH_INVOCATION_COMPLETION: pb.AttachInvocationCompletionNotificationMessage,
    T.GET_INVOCATION_OUTPUT_COMMAND: pb.GetInvocationOutputCommandMessage,
    T.GET_INVOCATION_OUTPUT_COMPLETION: pb.GetInvocationOutputCompletionNotificationMessage,
    T.COMPLETE_AWAKEABLE_COMMAND: pb.CompleteAwakeableCommandMessage,
    T.SIGNAL_NOTIFICATION: pb.SignalNotificationMessage,
}
_TYPES: typing.Dict[typing.Type[Message], MessageType] = {
    **{cls: type_ for type_, cls in _CLASSES.items()}, pb.SuspensionMessageV5: T.SUSPENSION}

#: The journal entry type restate-pg stores for each command: the in-process runtime's names where
#: it has the command (runtime/machine.py), Restate's command names otherwise. Lazy and eager
#: reads keep apart, since they replay differently; sys_journal shows the in-process GetState as
#: GetEagerState.
ENTRY_TYPES: typing.Dict[MessageType, str] = {
    T.INPUT_COMMAND: "Input",
    T.OUTPUT_COMMAND: "Output",
    T.GET_LAZY_STATE_COMMAND: "GetLazyState",
    T.SET_STATE_COMMAND: "SetState",
    T.CLEAR_STATE_COMMAND: "ClearState",
    T.CLEAR_ALL_STATE_COMMAND: "ClearAllState",
    T.GET_LAZY_STATE_KEYS_COMMAND: "GetLazyStateKeys",
    T.GET_EAGER_STATE_COMMAND: "GetEagerState",
    T.GET_EAGER_STATE_KEYS_COMMAND: "GetEagerStateKeys",
    T.GET_PROMISE_COMMAND: "GetPromise",
    T.PEEK_PROMISE_COMMAND: "PeekPromise",
    T.COMPLETE_PROMISE_COMMAND: "CompletePromise",
    T.SLEEP_COMMAND: "Sleep",
    T.CALL_COMMAND: "Call",
    T.ONE_WAY_CALL_COMMAND: "OneWayCall",
    T.SEND_SIGNAL_COMMAND: "SendSignal",
    T.RUN_COMMAND: "Run",
    T.ATTACH_INVOCATION_COMMAND: "AttachInvocation",
    T.GET_INVOCATION_OUTPUT_COMMAND: "GetInvocationOutput",
    T.COMPLETE_AWAKEABLE_COMMAND: "CompleteAwakeable",
}
#: The command type of a stored entry type: replay turns journal rows back into frames with it.
MESSAGE_TYPES_BY_ENTRY_TYPE: typing.Dict[str, MessageType] = {name: type_ for type_, name in ENTRY_TYPES.items()}


def decode(frame: Frame, version: int) -> Message:
    """The message a frame carries, for an endpoint speaking protocol `version`.

    Raises ProtocolViolation for a type code that is no message of versions 5 to 7 (an unknown
    command, notification or custom entry) and for a payload that does not parse.
    """
    if not MIN_VERSION <= version <= MAX_VERSION:
        raise ValueError(f"protocol version {version} is not one restate-pg speaks")
    type_ = known_type(frame.type)
    if type_ is None:
        raise ProtocolViolation(f"unknown {_namespace(frame.type)} message type {frame.type:#06x}")
    cls = pb.SuspensionMessageV5 if type_ is T.SUSPENSION and version < 7 else _CLASSES[type_]
    message = cls()
    try:
        message.ParseFromString(frame.payload)
    except DecodeError as e:
        raise ProtocolViolation(f"cannot decode {type_.name} ({frame.type:#06x}): {e}") from None
    return message


def message_type(message: Message) -> MessageType:
    """The type code a message is sent under."""
    try:
        return _TYPES[type(message)]
    except KeyError:
        raise ValueError(f"{type(message).__name__} is not a message of its own (only a part of one)") from None


def encode(message: Message, flags: int = 0) -> bytes:
    """One message as a frame, under the type code of its class."""
    return encode_frame(message_type(message), message, flags)


def _namespace(type_code: int) -> str:
    if type_code >= 0xFC00:
        return "custom"
    if type_code >= 0x8000:
        return "notification"
    return "command" if type_code >= 0x0400 else "control"
