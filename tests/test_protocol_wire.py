"""Restate's service protocol on the wire: frames, the message of every type, versions.

No endpoint and no database: bytes in, messages out. The expected bytes and codes are worked out
by hand from Restate's definitions (protocol.proto, header.rs), so that a field number or a type
code that drifted from Restate's would show here and not only against a real SDK.
"""

from __future__ import annotations

import itertools
import typing
from pathlib import Path

import pytest
from google.protobuf.message import Message

from restate_pg.protocol import service_protocol_pb2 as pb
from restate_pg.protocol.errors import IncompatibleProtocol, ProtocolViolation
from restate_pg.protocol.framing import REQUESTED_ACK, Frame, FrameDecoder, MessageType, encode_frame
from restate_pg.protocol.messages import ENTRY_TYPES, MESSAGE_TYPES_BY_ENTRY_TYPE, decode, encode, message_type
from restate_pg.protocol.versions import (
    DISCOVERY_ACCEPT, MAX_VERSION, MIN_VERSION, invocation_content_type, manifest_version, negotiate,
)

pytestmark = pytest.mark.memory

T = MessageType

#: The type codes of restate-sdk-shared-core's src/service_protocol/header.rs (plus CommandAck,
#: which only servers send: Restate's crates/service-protocol-v4/src/message_codec/mod.rs).
HEADER_RS = {
    "START": 0x0000, "SUSPENSION": 0x0001, "ERROR": 0x0002, "END": 0x0003, "COMMAND_ACK": 0x0004,
    "PROPOSE_RUN_COMPLETION": 0x0005, "AWAITING_ON": 0x0006, "PROPOSE_RUN_COMPLETION_ACK": 0x0007,
    "INPUT_COMMAND": 0x0400, "OUTPUT_COMMAND": 0x0401, "GET_LAZY_STATE_COMMAND": 0x0402,
    "GET_LAZY_STATE_COMPLETION": 0x8002, "SET_STATE_COMMAND": 0x0403, "CLEAR_STATE_COMMAND": 0x0404,
    "CLEAR_ALL_STATE_COMMAND": 0x0405, "GET_LAZY_STATE_KEYS_COMMAND": 0x0406, "GET_LAZY_STATE_KEYS_COMPLETION": 0x8006,
    "GET_EAGER_STATE_COMMAND": 0x0407, "GET_EAGER_STATE_KEYS_COMMAND": 0x0408, "GET_PROMISE_COMMAND": 0x0409,
    "GET_PROMISE_COMPLETION": 0x8009, "PEEK_PROMISE_COMMAND": 0x040A, "PEEK_PROMISE_COMPLETION": 0x800A,
    "COMPLETE_PROMISE_COMMAND": 0x040B, "COMPLETE_PROMISE_COMPLETION": 0x800B, "SLEEP_COMMAND": 0x040C,
    "SLEEP_COMPLETION": 0x800C, "CALL_COMMAND": 0x040D, "CALL_COMPLETION": 0x800D,
    "CALL_INVOCATION_ID_COMPLETION": 0x800E, "ONE_WAY_CALL_COMMAND": 0x040E, "SEND_SIGNAL_COMMAND": 0x0410,
    "RUN_COMMAND": 0x0411, "RUN_COMPLETION": 0x8011, "ATTACH_INVOCATION_COMMAND": 0x0412,
    "ATTACH_INVOCATION_COMPLETION": 0x8012, "GET_INVOCATION_OUTPUT_COMMAND": 0x0413,
    "GET_INVOCATION_OUTPUT_COMPLETION": 0x8013, "COMPLETE_AWAKEABLE_COMMAND": 0x0414, "SIGNAL_NOTIFICATION": 0xFBFF,
}


def header(frame: bytes) -> int:
    """The u64 header, as Restate's codecs read it."""
    return int.from_bytes(frame[:8], "big")


# ---- Frames -----------------------------------------------------------------------------------

def test_every_type_code_is_restates() -> None:
    assert {t.name: t.value for t in MessageType} == HEADER_RS
    assert [t.name for t in MessageType if t.is_command] == [n for n, v in HEADER_RS.items() if 0x0400 <= v < 0x8000]
    notifications = {n for n in HEADER_RS if n.endswith(("_COMPLETION", "_NOTIFICATION")) and not n.startswith("PROPOSE")}
    assert {t.name for t in MessageType if t.is_notification} == notifications and len(notifications) == 12
    assert not any(t.is_command or t.is_notification for t in MessageType if t < 0x0400)


def test_a_frame_is_type_flags_and_length_then_the_payload() -> None:
    frame = encode_frame(T.CLEAR_ALL_STATE_COMMAND, pb.ClearAllStateCommandMessage(name="x"))
    # name = 12, a string: tag (12 << 3) | 2 = 0x62, length 1, "x".
    assert frame == bytes.fromhex("0405" "0000" "00000003" "620178")
    assert header(frame) == (0x0405 << 48) | 3


def test_requested_ack_is_bit_47_of_the_header() -> None:
    """header.rs: REQUESTED_ACK_MASK = 0x8000_0000_0000 on the u64 header."""
    frame = encode_frame(T.PROPOSE_RUN_COMPLETION, pb.ProposeRunCompletionMessage(result_completion_id=3, value=b"1"),
                         flags=REQUESTED_ACK)
    assert header(frame) & 0x8000_0000_0000
    assert header(frame) >> 48 == 0x0005
    (decoded,) = FrameDecoder().feed(frame)
    assert decoded.requested_ack and decoded.flags == REQUESTED_ACK
    assert not FrameDecoder().feed(encode_frame(T.PROPOSE_RUN_COMPLETION, b""))[0].requested_ack


def test_frames_round_trip() -> None:
    sent = [
        Frame(T.START, 0, pb.StartMessage(id=b"inv_1", debug_id="inv_1", known_entries=1).SerializeToString()),
        Frame(T.END, 0, b""),
        Frame(T.PROPOSE_RUN_COMPLETION, REQUESTED_ACK, b"\x08\x01"),
        Frame(0xFC01, 0, b"custom"),
    ]
    stream = b"".join(encode_frame(f.type, f.payload, f.flags) for f in sent)
    decoder = FrameDecoder()
    assert decoder.feed(stream) == sent
    assert not decoder.pending


def test_a_decoder_fed_byte_by_byte_yields_each_frame_once_it_is_whole() -> None:
    messages = [pb.InputCommandMessage(value=pb.Value(content=b"x" * 300)), pb.EndMessage(),
                pb.SleepCommandMessage(wake_up_time=1, result_completion_id=1)]
    frames = [encode(m) for m in messages]
    ends = set(itertools.accumulate(len(f) for f in frames))
    decoder = FrameDecoder()
    received: typing.List[Frame] = []
    for position, byte in enumerate(b"".join(frames), start=1):
        out = decoder.feed(bytes([byte]))
        assert bool(out) == (position in ends), position  # an empty frame is whole with its header
        received += out
        assert decoder.pending == (position not in ends)
    assert [decode(f, 7) for f in received] == messages


def test_a_stream_cut_inside_a_frame_leaves_it_pending() -> None:
    frame = encode(pb.OutputCommandMessage(value=pb.Value(content=b"done")))
    decoder = FrameDecoder()
    assert decoder.feed(frame[:5]) == [] and decoder.pending
    assert decoder.feed(frame[5:-1]) == [] and decoder.pending
    assert len(decoder.feed(frame[-1:])) == 1 and not decoder.pending


def test_an_oversize_frame_is_refused_as_soon_as_its_header_arrives() -> None:
    decoder = FrameDecoder(max_message_size=10)
    assert decoder.feed(encode_frame(T.END, b"0123456789")) == [Frame(T.END, 0, b"0123456789")]  # at the limit
    with pytest.raises(ProtocolViolation, match="11 bytes long, over the limit of 10 bytes"):
        decoder.feed(encode_frame(T.OUTPUT_COMMAND, b"x" * 11)[:8])
    with pytest.raises(ProtocolViolation):  # the framing is lost: nothing more is read
        decoder.feed(b"x" * 11)
    assert FrameDecoder().max_message_size == 64 * 1024 * 1024


def test_encode_frame_refuses_what_the_header_cannot_hold() -> None:
    with pytest.raises(ValueError):
        encode_frame(0x1_0000, b"")
    with pytest.raises(ValueError):
        encode_frame(T.END, b"", flags=0x1_0000)


# ---- Messages ---------------------------------------------------------------------------------

FAILURE = pb.Failure(code=500, message="boom", metadata=[pb.FailureMetadata(key="k", value="v")])
SAMPLES: typing.Dict[MessageType, Message] = {
    T.START: pb.StartMessage(id=b"inv_1", debug_id="inv_1", known_entries=3, partial_state=True, key="k",
                             state_map=[pb.StartMessage.StateEntry(key=b"a", value=b"1")], random_seed=7,
                             retry_count_since_last_stored_entry=2, duration_since_last_stored_entry=10,
                             scope="s", limit_key="l", idempotency_key="i"),
    T.ERROR: pb.ErrorMessage(code=570, message="mismatch", stacktrace="at", related_command_index=2,
                             related_command_name="n", related_command_type=0x0411, next_retry_delay=5,
                             behavior=pb.PAUSE),
    T.END: pb.EndMessage(),
    T.COMMAND_ACK: pb.CommandAckMessage(command_index=4),
    T.PROPOSE_RUN_COMPLETION: pb.ProposeRunCompletionMessage(result_completion_id=1, failure=FAILURE),
    T.AWAITING_ON: pb.AwaitingOnMessage(awaiting_on=pb.Future(waiting_completions=[1]), executing_side_effects=True),
    T.PROPOSE_RUN_COMPLETION_ACK: pb.ProposeRunCompletionAckMessage(completion_id=1),
    T.INPUT_COMMAND: pb.InputCommandMessage(headers=[pb.Header(key="h", value="v")], value=pb.Value(content=b"{}")),
    T.OUTPUT_COMMAND: pb.OutputCommandMessage(failure=FAILURE, name="out"),
    T.GET_LAZY_STATE_COMMAND: pb.GetLazyStateCommandMessage(key=b"a", result_completion_id=1),
    T.GET_LAZY_STATE_COMPLETION: pb.GetLazyStateCompletionNotificationMessage(completion_id=1, void=pb.Void()),
    T.SET_STATE_COMMAND: pb.SetStateCommandMessage(key=b"a", value=pb.Value(content=b"1")),
    T.CLEAR_STATE_COMMAND: pb.ClearStateCommandMessage(key=b"a"),
    T.CLEAR_ALL_STATE_COMMAND: pb.ClearAllStateCommandMessage(name="clear"),
    T.GET_LAZY_STATE_KEYS_COMMAND: pb.GetLazyStateKeysCommandMessage(result_completion_id=2),
    T.GET_LAZY_STATE_KEYS_COMPLETION: pb.GetLazyStateKeysCompletionNotificationMessage(
        completion_id=2, state_keys=pb.StateKeys(keys=[b"a", b"b"])),
    T.GET_EAGER_STATE_COMMAND: pb.GetEagerStateCommandMessage(key=b"a", value=pb.Value(content=b"1")),
    T.GET_EAGER_STATE_KEYS_COMMAND: pb.GetEagerStateKeysCommandMessage(value=pb.StateKeys(keys=[b"a"])),
    T.GET_PROMISE_COMMAND: pb.GetPromiseCommandMessage(key="p", result_completion_id=3),
    T.GET_PROMISE_COMPLETION: pb.GetPromiseCompletionNotificationMessage(completion_id=3, value=pb.Value(content=b"1")),
    T.PEEK_PROMISE_COMMAND: pb.PeekPromiseCommandMessage(key="p", result_completion_id=4),
    T.PEEK_PROMISE_COMPLETION: pb.PeekPromiseCompletionNotificationMessage(completion_id=4, void=pb.Void()),
    T.COMPLETE_PROMISE_COMMAND: pb.CompletePromiseCommandMessage(key="p", completion_value=pb.Value(content=b"1"),
                                                                 result_completion_id=5),
    T.COMPLETE_PROMISE_COMPLETION: pb.CompletePromiseCompletionNotificationMessage(completion_id=5, failure=FAILURE),
    T.SLEEP_COMMAND: pb.SleepCommandMessage(wake_up_time=1_700_000_000_000, result_completion_id=6),
    T.SLEEP_COMPLETION: pb.SleepCompletionNotificationMessage(completion_id=6, void=pb.Void()),
    T.CALL_COMMAND: pb.CallCommandMessage(service_name="S", handler_name="h", parameter=b"1", key="k",
                                          headers=[pb.Header(key="a", value="b")], idempotency_key="i", scope="s",
                                          limit_key="l", invocation_id_notification_idx=7, result_completion_id=8),
    T.CALL_COMPLETION: pb.CallCompletionNotificationMessage(completion_id=8, value=pb.Value(content=b"2")),
    T.CALL_INVOCATION_ID_COMPLETION: pb.CallInvocationIdCompletionNotificationMessage(completion_id=7,
                                                                                      invocation_id="inv_1x"),
    T.ONE_WAY_CALL_COMMAND: pb.OneWayCallCommandMessage(service_name="S", handler_name="h", invoke_time=9,
                                                        invocation_id_notification_idx=9),
    T.SEND_SIGNAL_COMMAND: pb.SendSignalCommandMessage(target_invocation_id="inv_1x", idx=1, void=pb.Void(),
                                                       entry_name="cancel"),
    T.RUN_COMMAND: pb.RunCommandMessage(result_completion_id=10, name="charge"),
    T.RUN_COMPLETION: pb.RunCompletionNotificationMessage(completion_id=10, value=pb.Value(content=b"ok")),
    T.ATTACH_INVOCATION_COMMAND: pb.AttachInvocationCommandMessage(
        workflow_target=pb.WorkflowTarget(workflow_name="W", workflow_key="k"), result_completion_id=11),
    T.ATTACH_INVOCATION_COMPLETION: pb.AttachInvocationCompletionNotificationMessage(completion_id=11, failure=FAILURE),
    T.GET_INVOCATION_OUTPUT_COMMAND: pb.GetInvocationOutputCommandMessage(
        idempotent_request_target=pb.IdempotentRequestTarget(service_name="S", service_key="k", handler_name="h",
                                                             idempotency_key="i"), result_completion_id=12),
    T.GET_INVOCATION_OUTPUT_COMPLETION: pb.GetInvocationOutputCompletionNotificationMessage(completion_id=12,
                                                                                            void=pb.Void()),
    T.COMPLETE_AWAKEABLE_COMMAND: pb.CompleteAwakeableCommandMessage(awakeable_id="sign_1x", value=pb.Value(content=b"1")),
    T.SIGNAL_NOTIFICATION: pb.SignalNotificationMessage(name="approved", value=pb.Value(content=b"yes")),
}


@pytest.mark.parametrize("version", [5, 6, 7])
@pytest.mark.parametrize("type_", [t for t in MessageType if t is not T.SUSPENSION], ids=lambda t: t.name)
def test_every_type_decodes_to_its_class(type_: MessageType, version: int) -> None:
    sent = SAMPLES[type_]
    decoded = decode(FrameDecoder().feed(encode(sent))[0], version)
    assert type(decoded) is type(sent)
    assert decoded == sent
    assert message_type(decoded) is type_


def test_suspension_is_flat_in_v5_and_v6_and_a_future_tree_in_v7() -> None:
    # V5/V6: waiting_completions = 1 [4], waiting_signals = 2 [1], waiting_named_signals = 3 ["go"].
    flat = Frame(T.SUSPENSION, 0, bytes.fromhex("0a0104" "120101" "1a02") + b"go")
    for version in (5, 6):
        message = decode(flat, version)
        assert isinstance(message, pb.SuspensionMessageV5)
        assert (list(message.waiting_completions), list(message.waiting_signals),
                list(message.waiting_named_signals)) == ([4], [1], ["go"])
    # Read as V7, the flat fields are reserved: nothing is awaited, which is why the version matters.
    assert not decode(flat, 7).HasField("awaiting_on")

    tree = pb.SuspensionMessage(awaiting_on=pb.Future(
        combinator_type=pb.ALL_SUCCEEDED_OR_FIRST_FAILED, waiting_completions=[3],
        nested_futures=[pb.Future(combinator_type=pb.FIRST_COMPLETED, waiting_signals=[1, 17])]))
    message = decode(FrameDecoder().feed(encode(tree))[0], 7)
    assert isinstance(message, pb.SuspensionMessage) and message == tree
    # awaiting_on = 4: tag 0x22.
    assert encode(tree)[8] == 0x22
    assert message_type(pb.SuspensionMessageV5()) is message_type(tree) is T.SUSPENSION


def test_field_numbers_are_restates() -> None:
    """A few messages encoded by hand from protocol.proto's field numbers."""
    start = pb.StartMessage(id=b"x", debug_id="inv", known_entries=2, scope="s", random_seed=1)
    # id = 1, debug_id = 2, known_entries = 3, random_seed = 9 (varint, tag 0x48), scope = 10 (tag 0x52).
    assert start.SerializeToString() == bytes.fromhex("0a0178" "1203696e76" "1802" "4801" "520173")
    call = pb.CallCommandMessage(invocation_id_notification_idx=1, result_completion_id=2, name="c")
    assert call.SerializeToString() == bytes.fromhex("5001" "5802" "620163")  # 10, 11, 12
    run = pb.ProposeRunCompletionMessage(result_completion_id=1, value=b"v")
    assert run.SerializeToString() == bytes.fromhex("0801" "720176")  # value = 14: tag 0x72
    signal = pb.SignalNotificationMessage(idx=17, void=pb.Void())
    assert signal.SerializeToString() == bytes.fromhex("1011" "2200")  # idx = 2, void = 4
    keys = pb.GetLazyStateKeysCompletionNotificationMessage(completion_id=1, state_keys=pb.StateKeys(keys=[b"a"]))
    assert keys.SerializeToString() == bytes.fromhex("0801" "8a0103" "0a0161")  # state_keys = 17: tag 0x8a 0x01


@pytest.mark.parametrize(("code", "kind"), [(0x0008, "control"), (0x040F, "command"), (0x8001, "notification"),
                                            (0xFC01, "custom")])
def test_unknown_types_are_protocol_violations(code: int, kind: str) -> None:
    with pytest.raises(ProtocolViolation, match=f"unknown {kind} message type {code:#06x}"):
        decode(Frame(code, 0, b""), 7)


def test_a_payload_that_does_not_parse_is_a_protocol_violation() -> None:
    with pytest.raises(ProtocolViolation, match="cannot decode CALL_COMMAND"):
        decode(Frame(T.CALL_COMMAND, 0, b"\x0a\x05ab"), 5)  # a string announced 5 bytes long, holding 2


def test_decoding_needs_a_version_restate_pg_speaks() -> None:
    with pytest.raises(ValueError):
        decode(Frame(T.END, 0, b""), 4)


def test_only_whole_messages_have_a_type() -> None:
    with pytest.raises(ValueError, match="Value"):
        message_type(pb.Value())


def test_every_command_has_an_entry_type_and_back() -> None:
    assert set(ENTRY_TYPES) == {t for t in MessageType if t.is_command}
    assert {MESSAGE_TYPES_BY_ENTRY_TYPE[name]: name for name in MESSAGE_TYPES_BY_ENTRY_TYPE} == ENTRY_TYPES
    # The in-process runtime's names, where it has the command.
    source = (Path(__file__).resolve().parent.parent / "restate_pg" / "runtime" / "machine.py").read_text()
    for name in ("Call", "OneWayCall", "Sleep", "SetState", "ClearState", "ClearAllState", "Run", "GetPromise",
                 "PeekPromise", "CompletePromise", "AttachInvocation", "CompleteAwakeable"):
        assert f'"{name}"' in source, name
        assert ENTRY_TYPES[MESSAGE_TYPES_BY_ENTRY_TYPE[name]] == name


# ---- Versions ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("endpoint", "server_max", "chosen"), [
    ((5, 7), 7, 7), ((5, 6), 7, 6), ((1, 5), 7, 5), ((6, 9), 7, 7), ((5, 7), 6, 6), ((5, 5), 5, 5), ((7, 7), 7, 7),
])
def test_negotiate_picks_the_highest_shared_version(endpoint: typing.Tuple[int, int], server_max: int, chosen: int) -> None:
    assert negotiate(*endpoint, server_max=server_max) == chosen


@pytest.mark.parametrize(("endpoint", "server_max"), [((1, 4), 7), ((8, 9), 7), ((7, 7), 6), ((7, 5), 7)])
def test_negotiate_without_a_shared_version_is_incompatible(endpoint: typing.Tuple[int, int], server_max: int) -> None:
    with pytest.raises(IncompatibleProtocol) as caught:
        negotiate(*endpoint, server_max=server_max)
    assert str(caught.value) == (
        f"unsupported service protocol versions: [{endpoint[0]}, {endpoint[1]}]. Supported versions by this runtime "
        f"are [5, {server_max}]. Please upgrade the SDK and try registering again.")


def test_negotiate_refuses_a_server_range_restate_pg_does_not_speak() -> None:
    assert (MIN_VERSION, MAX_VERSION) == (5, 7)
    for server_max in (4, 8):
        with pytest.raises(ValueError):
            negotiate(5, 7, server_max=server_max)


def test_content_types() -> None:
    assert invocation_content_type(5) == "application/vnd.restate.invocation.v5"
    assert invocation_content_type(7) == "application/vnd.restate.invocation.v7"
    assert DISCOVERY_ACCEPT == (
        "application/vnd.restate.endpointmanifest.v1+json, application/vnd.restate.endpointmanifest.v2+json, "
        "application/vnd.restate.endpointmanifest.v3+json, application/vnd.restate.endpointmanifest.v4+json")
    for version in (1, 2, 3, 4):
        assert manifest_version(f"application/vnd.restate.endpointmanifest.v{version}+json") == version
    for refused in ("application/vnd.restate.endpointmanifest.v5+json", "application/json", "", None):
        with pytest.raises(IncompatibleProtocol):
            manifest_version(refused)
