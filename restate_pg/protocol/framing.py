"""Frames: the 8-byte header and the protobuf payload it announces.

Every message on an invocation stream, both ways, is one frame: a big-endian header of type
(u16), flags (u16) and payload length (u32), then the payload. Type codes, namespaces and the
flag bit are restate-sdk-shared-core's (src/service_protocol/header.rs) and Restate's own codec's
(crates/service-protocol-v4/src/message_codec).
"""

from __future__ import annotations

import dataclasses
import enum
import struct
import typing

from google.protobuf.message import Message

from restate_pg.protocol.errors import ProtocolViolation

__all__ = ["DEFAULT_MAX_MESSAGE_SIZE", "HEADER_SIZE", "REQUESTED_ACK", "Frame", "FrameDecoder", "MessageType",
           "encode_frame", "is_command", "known_type"]

_HEADER = struct.Struct(">HHI")
HEADER_SIZE = _HEADER.size
#: In the 16-bit flags: the sender wants an acknowledgement (the u64 header's bit 47,
#: 0x8000_0000_0000). SDKs set it on ProposeRunCompletion (answered in V7 by
#: ProposeRunCompletionAck); Restate also honours it on commands, answering with CommandAck.
REQUESTED_ACK = 0x8000
#: The largest message accepted by default. Restate's own limit is lower
#: (`networking.message-size-limit`, 32 MiB); restate-pg's values live in PostgreSQL, whose
#: limit on one bytea is 1 GiB.
DEFAULT_MAX_MESSAGE_SIZE = 64 * 1024 * 1024

_COMMANDS = range(0x0400, 0x8000)
_NOTIFICATIONS = range(0x8000, 0xFC00)


class MessageType(enum.IntEnum):
    """Every message type of protocol versions 5 to 7. Control messages are 0x0000-0x03FF,
    commands 0x0400-0x7FFF, notifications 0x8000-0xFBFF; 0xFC00 and above are custom entries,
    which restate-pg does not accept."""

    START = 0x0000
    SUSPENSION = 0x0001
    ERROR = 0x0002
    END = 0x0003
    COMMAND_ACK = 0x0004
    PROPOSE_RUN_COMPLETION = 0x0005
    AWAITING_ON = 0x0006
    PROPOSE_RUN_COMPLETION_ACK = 0x0007
    INPUT_COMMAND = 0x0400
    OUTPUT_COMMAND = 0x0401
    GET_LAZY_STATE_COMMAND = 0x0402
    GET_LAZY_STATE_COMPLETION = 0x8002
    SET_STATE_COMMAND = 0x0403
    CLEAR_STATE_COMMAND = 0x0404
    CLEAR_ALL_STATE_COMMAND = 0x0405
    GET_LAZY_STATE_KEYS_COMMAND = 0x0406
    GET_LAZY_STATE_KEYS_COMPLETION = 0x8006
    GET_EAGER_STATE_COMMAND = 0x0407
    GET_EAGER_STATE_KEYS_COMMAND = 0x0408
    GET_PROMISE_COMMAND = 0x0409
    GET_PROMISE_COMPLETION = 0x8009
    PEEK_PROMISE_COMMAND = 0x040A
    PEEK_PROMISE_COMPLETION = 0x800A
    COMPLETE_PROMISE_COMMAND = 0x040B
    COMPLETE_PROMISE_COMPLETION = 0x800B
    SLEEP_COMMAND = 0x040C
    SLEEP_COMPLETION = 0x800C
    CALL_COMMAND = 0x040D
    CALL_COMPLETION = 0x800D
    CALL_INVOCATION_ID_COMPLETION = 0x800E
    ONE_WAY_CALL_COMMAND = 0x040E
    SEND_SIGNAL_COMMAND = 0x0410
    RUN_COMMAND = 0x0411
    RUN_COMPLETION = 0x8011
    ATTACH_INVOCATION_COMMAND = 0x0412
    ATTACH_INVOCATION_COMPLETION = 0x8012
    GET_INVOCATION_OUTPUT_COMMAND = 0x0413
    GET_INVOCATION_OUTPUT_COMPLETION = 0x8013
    COMPLETE_AWAKEABLE_COMMAND = 0x0414
    SIGNAL_NOTIFICATION = 0xFBFF

    @property
    def is_command(self) -> bool:
        """A journal command: what the handler did, stored and replayed in order."""
        return self.value in _COMMANDS

    @property
    def is_notification(self) -> bool:
        """A journal notification: a completion of a command, or a signal."""
        return self.value in _NOTIFICATIONS


#: MessageType by code: `MessageType(code)` goes through the enum machinery (a microsecond a call,
#: several calls a frame).
_BY_CODE = {member.value: member for member in MessageType}


def known_type(code: int) -> typing.Optional[MessageType]:
    """The message type of `code`, None for a code no version defines."""
    return _BY_CODE.get(code)


def is_command(code: int) -> bool:
    """Whether `code` is a journal command's (`MessageType.is_command`, without the enum)."""
    return code in _COMMANDS


class Frame(typing.NamedTuple):
    """One message as it travels: its type code (an int, so that unknown codes reach the
    decoder, which names them), its flags and its undecoded payload. A named tuple: one is made
    per message, and a frozen dataclass takes three times as long to build."""

    type: int
    flags: int
    payload: bytes

    @property
    def requested_ack(self) -> bool:
        return bool(self.flags & REQUESTED_ACK)


def encode_frame(type: int, message: typing.Union[Message, bytes], flags: int = 0) -> bytes:  # noqa: A002 (the wire's name)
    """The header and payload of one message, ready to write on the stream."""
    payload = message if isinstance(message, bytes) else message.SerializeToString()
    if not 0 <= type <= 0xFFFF or not 0 <= flags <= 0xFFFF:
        raise ValueError(f"message type {type:#x} or flags {flags:#x} do not fit in 16 bits")
    if len(payload) > 0xFFFF_FFFF:
        raise ValueError(f"a payload of {len(payload)} bytes does not fit in a frame")
    return _HEADER.pack(type, flags, len(payload)) + payload


class FrameDecoder:
    """Cuts a byte stream, received in pieces of any size, into frames.

    A frame whose header announces more than `max_message_size` bytes raises ProtocolViolation
    as soon as its header arrives, before the payload is buffered; the decoder is unusable after
    that (the stream has lost its framing). At the end of the stream, `pending` says whether a
    frame was cut short.
    """

    def __init__(self, max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE) -> None:
        self.max_message_size = max_message_size
        self._buffer = bytearray()
        self._broken: typing.Optional[ProtocolViolation] = None

    @property
    def pending(self) -> bool:
        """Part of a frame is buffered, waiting for the rest."""
        return bool(self._buffer)

    def feed(self, data: bytes) -> typing.List[Frame]:
        """The frames completed by `data`, in order (none while a frame is still partial)."""
        if self._broken is not None:
            raise self._broken
        buffer = self._buffer
        buffer += data
        frames: typing.List[Frame] = []
        offset = 0
        while len(buffer) - offset >= HEADER_SIZE:
            type_code, flags, length = _HEADER.unpack_from(buffer, offset)
            if length > self.max_message_size:
                self._broken = ProtocolViolation(
                    f"message of type {type_code:#06x} is {length} bytes long, over the limit of "
                    f"{self.max_message_size} bytes")
                raise self._broken
            end = offset + HEADER_SIZE + length
            if len(buffer) < end:
                break
            frames.append(Frame(type_code, flags, bytes(buffer[offset + HEADER_SIZE:end])))
            offset = end
        del buffer[:offset]
        return frames
