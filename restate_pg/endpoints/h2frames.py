"""HTTP/2's frames (RFC 9113) and the one HPACK form (RFC 7541) our requests are written in:
what `h2c` needs to write, and the numbers it reads. A separate module so that the client reads as
the exchange it is, not as a codec."""

from __future__ import annotations

import struct
import typing

from hpack.table import HeaderTable

#: Our receive window per stream and connection: large, so that endpoints are never throttled by us.
WINDOW = 16 * 1024 * 1024

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = range(10)
END_STREAM = ACK = 0x1
END_HEADERS, PADDED, PRIORITY_FLAG = 0x4, 0x8, 0x20
HEADER_TABLE_SIZE, ENABLE_PUSH, MAX_CONCURRENT_STREAMS, INITIAL_WINDOW_SIZE, MAX_FRAME_SIZE = 1, 2, 3, 4, 5
PROTOCOL_ERROR, CANCEL = 0x1, 0x8
MAX_STREAM_ID = 2**31 - 1

FRAME_HEADER = struct.Struct(">IBI")  # length (24 bits) and type packed in the first word, flags, stream
SETTING = struct.Struct(">HI")
U32 = struct.Struct(">I")
_STATIC_NAMES = {name: index for index, (name, _) in reversed(list(enumerate(HeaderTable.STATIC_TABLE, 1)))}


def frame(kind: int, flags: int, stream_id: int, payload: bytes = b"") -> bytes:
    return FRAME_HEADER.pack(len(payload) << 8 | kind, flags, stream_id) + payload


def _hpack_int(value: int, prefix_bits: int, first: int) -> bytes:
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes((first | value,))
    out, value = bytearray((first | limit,)), value - limit
    while value >= 128:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def encode_headers(headers: typing.Iterable[typing.Tuple[str, str]]) -> bytes:
    """An HPACK block of literals without indexing: no state shared with the peer's decoder, so
    one connection's requests can be encoded in any order (and a failed one never desynchronises it)."""
    out = bytearray()
    for name, value in headers:
        raw_name, raw_value = name.encode(), value.encode()
        index = _STATIC_NAMES.get(raw_name)
        if index is None:
            out += b"\x00" + _hpack_int(len(raw_name), 7, 0) + raw_name
        else:
            out += _hpack_int(index, 4, 0)
        out += _hpack_int(len(raw_value), 7, 0) + raw_value
    return bytes(out)
