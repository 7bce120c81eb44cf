"""A small HTTP/2 cleartext client (prior knowledge) with full-duplex streams.

Why not httpx: its HTTP/2 transport sends the whole request body before it reads the response,
so Restate's bidirectional mode (completions go out while the handler runs) cannot be written
with it. Why not the `h2` library: its per-stream state machine, events and header encoding were
a third of the serving process's time with TypeScript endpoints. This client speaks only what
one side of these exchanges needs (RFC 9113 as a client that never accepts pushes): POST
streams, DATA under both peers' flow control, the control frames. Requests are HPACK literals
that never touch the dynamic table; responses are decoded by `hpack`, which keeps the peer's.
One connection per endpoint authority multiplexes the invocations, each a full-duplex stream.
"""

from __future__ import annotations

import asyncio
import collections
import struct
import typing
from urllib.parse import urlsplit

import hpack

from restate_pg.core.wakeups import settle_later
from restate_pg.endpoints.h2frames import (
    ACK, CANCEL, CONTINUATION, DATA, ENABLE_PUSH, END_HEADERS, END_STREAM, FRAME_HEADER, GOAWAY, HEADERS,
    INITIAL_WINDOW_SIZE, MAX_CONCURRENT_STREAMS, MAX_FRAME_SIZE, MAX_STREAM_ID, PADDED, PING, PREFACE,
    PRIORITY_FLAG, PROTOCOL_ERROR, PUSH_PROMISE, RST_STREAM, SETTING, SETTINGS, U32, WINDOW, WINDOW_UPDATE,
    encode_headers, frame,
)


class StreamClosed(ConnectionError):
    """The stream or its connection ended before the exchange did."""


class Stream:
    """One request: write with `send`, end the request with `end`, read the response."""

    def __init__(self, connection: "H2Connection", header_block: bytes) -> None:
        self._connection = connection
        self.id = 0  # given when the headers are written, so that ids go out in increasing order
        self.status: typing.Optional[int] = None
        self.headers: typing.Dict[str, str] = {}
        self.error: typing.Optional[BaseException] = None
        self.local_closed = False
        self.remote_closed = False
        self.send_window = connection.peer_initial_window
        self.unacknowledged = 0  # bytes received and not yet returned to the endpoint's window
        self._header_block: typing.Optional[bytes] = header_block  # written with the first DATA: one write
        self._chunks: typing.Deque[bytes] = collections.deque()
        loop = connection.loop
        self._responded: asyncio.Future[None] = loop.create_future()
        self._reader: typing.Optional[asyncio.Future[typing.Optional[bytes]]] = None
        self._window: typing.Optional[asyncio.Future[None]] = None

    async def response(self, timeout: typing.Optional[float] = None) -> int:
        """Wait for the response's headers, at most `timeout` seconds (core/wakeups.py); its status."""
        if self.status is None and self.error is None:
            await self._connection.write(self._take_headers())
        if not self._responded.done():
            deadline = settle_later(self._responded, timeout, exception=asyncio.TimeoutError())
            await self._responded
            if deadline is not None:
                deadline.cancel()
        if self.status is None:
            raise StreamClosed(f"the stream ended before a response: {self.error!r}")
        return self.status

    async def send(self, data: bytes, end: bool = False) -> None:
        """Write `data` to the request body (and with `end`, end it), waiting for the endpoint's
        flow-control window as needed."""
        conn = self._connection
        view = memoryview(data)
        while True:
            if self.error is not None:
                raise StreamClosed(str(self.error))
            allowed = min(len(view), self.send_window, conn.send_window, conn.peer_max_frame)
            if allowed <= 0 and view:
                self._window = conn.loop.create_future()
                conn.window_waiters.add(self)
                await conn.write(self._take_headers())
                await self._window
                continue
            frames = [self._take_headers()]
            while allowed > 0:
                self.send_window -= allowed
                conn.send_window -= allowed
                frames.append(frame(DATA, 0, self.id, bytes(view[:allowed])))
                view = view[allowed:]
                allowed = min(len(view), self.send_window, conn.send_window, conn.peer_max_frame)
            if end and not view:
                self.local_closed = True
                frames.append(frame(DATA, END_STREAM, self.id))
            await conn.write(b"".join(frames))
            if not view:
                if self.local_closed and self.remote_closed:
                    conn.forget(self)
                return

    async def end(self) -> None:
        """End the request body (the endpoint then finishes or suspends)."""
        if self.local_closed or self.error is not None:
            return
        try:
            await self.send(b"", end=True)
        except StreamClosed:
            pass

    def next_chunk(self) -> "asyncio.Future[typing.Optional[bytes]]":
        """A future of the next part of the response body (all that arrived, joined); None at its
        end; StreamClosed on a reset. A plain future: a loop can wait on it with others, task-free."""
        future = self._connection.loop.create_future()
        if self._chunks:
            future.set_result(self._take_chunks())
        elif self.remote_closed or self.error is not None:
            self._settle(future)
        else:
            self._reader = future
        return future

    async def read(self) -> typing.Optional[bytes]:
        return await self.next_chunk()

    async def finish(self) -> None:
        """Close the exchange after the endpoint's last message: END_STREAM on the request, not
        RST_STREAM. Endpoints count resets against a rate limit (Node's HTTP/2 server, hence the
        TypeScript SDK, drops the connection of a client resetting more than about 33 streams a
        second beyond a burst of 1,000), so resetting every finished stream breaks connections under load."""
        await self.end()
        self._connection.forget(self)

    async def reset(self) -> None:
        """Abandon the exchange."""
        conn = self._connection
        if self.error is None and self.id and not (self.local_closed and self.remote_closed):
            self.error = StreamClosed("the stream was reset")
            try:
                await conn.write(frame(RST_STREAM, 0, self.id, U32.pack(CANCEL)))
            except StreamClosed:
                pass
        conn.forget(self)

    # -- from the connection ---------------------------------------------------------------------

    def _take_headers(self) -> bytes:
        block, self._header_block = self._header_block, None
        if block is None:
            return b""
        self.id = self._connection.register(self)
        return self._connection.header_frames(self.id, block)

    def _take_chunks(self) -> bytes:
        chunks = self._chunks
        data = chunks.popleft() if len(chunks) == 1 else b"".join(chunks)
        chunks.clear()
        return data

    def _settle(self, future: "asyncio.Future[typing.Optional[bytes]]") -> None:
        if self.error is not None:
            future.set_exception(StreamClosed(str(self.error)))
        else:
            future.set_result(None)

    def on_headers(self, headers: typing.List[typing.Tuple[bytes, bytes]]) -> None:
        if self.status is not None:
            return  # trailers: nothing in Restate's protocol needs them
        fields = {name.decode("latin-1"): value.decode("latin-1") for name, value in headers}
        status = int(fields.pop(":status", "0") or 0)
        if 100 <= status < 200:
            return  # informational: the final response follows
        self.status, self.headers = status, fields
        if not self._responded.done():
            self._responded.set_result(None)

    def deliver(self) -> None:
        """Hand what arrived to a waiting reader (once per read from the socket, not per frame)."""
        reader = self._reader
        if reader is not None and not reader.done() and (self._chunks or self.remote_closed or self.error):
            self._reader = None
            if self._chunks:
                reader.set_result(self._take_chunks())
            else:
                self._settle(reader)

    def on_end(self, error: typing.Optional[BaseException] = None) -> None:
        """The endpoint ended its side (`error` None) or the stream failed."""
        if error is None:
            self.remote_closed = True
        elif self.error is None:
            self.error = error
        if not self._responded.done():
            self._responded.set_result(None)
        self.wake_sender()

    def wake_sender(self) -> None:
        if self._window is not None and not self._window.done():
            self._window.set_result(None)


class H2Connection(asyncio.Protocol):
    """One connection to an endpoint: its frames parsed as they arrive, its streams by id."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.loop = asyncio.get_running_loop()
        self.streams: typing.Dict[int, Stream] = {}
        self.window_waiters: typing.Set[Stream] = set()
        self.closed = False
        self.peer_initial_window = 65535
        self.peer_max_frame = 16384
        self.peer_max_streams = MAX_STREAM_ID
        self.send_window = 65535
        self._next_id = 1
        self._unacknowledged = 0
        self._decoder = hpack.Decoder()
        self._authority = f"{host}:{port}"
        self._buffer = bytearray()
        self._continued: typing.Optional[typing.Tuple[int, int, bytearray]] = None  # stream, flags, block
        self._transport: typing.Optional[asyncio.Transport] = None
        self._drained: typing.Optional[asyncio.Future[None]] = None
        self._outgoing: typing.List[bytes] = []
        self._error: BaseException = StreamClosed("the connection closed")

    async def connect(self, timeout: float) -> None:
        await asyncio.wait_for(self.loop.create_connection(lambda: self, self.host, self.port), timeout)

    def available(self) -> bool:
        return not self.closed and len(self.streams) < self.peer_max_streams and self._next_id < MAX_STREAM_ID

    def open(self, path: str, headers: typing.Mapping[str, str]) -> Stream:
        """A new stream whose request headers go out with its first write."""
        request = [(":method", "POST"), (":scheme", "http"), (":authority", self._authority), (":path", path),
                   *((name.lower(), value) for name, value in headers.items())]
        return Stream(self, encode_headers(request))

    def register(self, stream: Stream) -> int:
        if self.closed or self._next_id > MAX_STREAM_ID:
            raise StreamClosed(f"the connection to the endpoint ended: {self._error}")
        stream_id, self._next_id = self._next_id, self._next_id + 2
        stream.send_window = self.peer_initial_window
        self.streams[stream_id] = stream
        return stream_id

    def forget(self, stream: Stream) -> None:
        self.streams.pop(stream.id, None)
        self.window_waiters.discard(stream)

    def header_frames(self, stream_id: int, block: bytes) -> bytes:
        size = self.peer_max_frame
        if len(block) <= size:
            return frame(HEADERS, END_HEADERS, stream_id, block)
        parts = [block[i:i + size] for i in range(0, len(block), size)]
        return b"".join([frame(HEADERS, 0, stream_id, parts[0]),
                         *(frame(CONTINUATION, 0, stream_id, part) for part in parts[1:-1]),
                         frame(CONTINUATION, END_HEADERS, stream_id, parts[-1])])

    async def write(self, data: bytes) -> None:
        if not data:
            return
        if self._transport is None or self._transport.is_closing():
            raise StreamClosed(f"the connection to the endpoint ended: {self._error}")
        self._queue(data)
        if self._drained is not None:
            await asyncio.shield(self._drained)

    def _queue(self, data: bytes) -> None:
        """Writes wait for the end of the event loop's turn and go out as one: the streams of
        one connection write often and little, and a send(2) per write was a tenth of the
        serving process's time under load."""
        if not self._outgoing:
            self.loop.call_soon(self._write_out)
        self._outgoing.append(data)

    def _write_out(self) -> None:
        data = b"".join(self._outgoing)
        self._outgoing.clear()
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(data)

    async def close(self) -> None:
        self.closed = True
        if self._transport is not None and not self._transport.is_closing():
            self._outgoing.append(frame(GOAWAY, 0, 0, U32.pack(0) + U32.pack(0)))
            self._write_out()
            self._transport.close()

    # -- asyncio.Protocol ----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """The preface goes out here, not after `connect` returns: the endpoint's SETTINGS can be
        read (and acknowledged) before that."""
        self._transport = typing.cast(asyncio.Transport, transport)
        settings = SETTING.pack(ENABLE_PUSH, 0) + SETTING.pack(INITIAL_WINDOW_SIZE, WINDOW)
        self._transport.write(PREFACE + frame(SETTINGS, 0, 0, settings) + frame(WINDOW_UPDATE, 0, 0, U32.pack(WINDOW - 65535)))

    def connection_lost(self, exc: typing.Optional[Exception]) -> None:
        self.closed = True
        if exc is not None:
            self._error = exc
        for stream in list(self.streams.values()):
            stream.on_end(StreamClosed(str(self._error)))
            stream.deliver()
        self.streams.clear()
        self.resume_writing()

    def pause_writing(self) -> None:
        if self._drained is None:
            self._drained = self.loop.create_future()

    def resume_writing(self) -> None:
        drained, self._drained = self._drained, None
        if drained is not None and not drained.done():
            drained.set_result(None)

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        touched: typing.Set[Stream] = set()
        offset, size = 0, len(buffer)
        try:
            while size - offset >= 9:
                length_kind, flags, stream_id = FRAME_HEADER.unpack_from(buffer, offset)
                end = offset + 9 + (length_kind >> 8)
                if end > size:
                    break
                self._on_frame(length_kind & 0xFF, flags, stream_id & MAX_STREAM_ID, bytes(buffer[offset + 9:end]), touched)
                offset = end
        except (hpack.HPACKError, struct.error, ValueError, UnicodeDecodeError) as exc:
            self._fail(f"the endpoint sent a malformed frame: {exc!r}")
        except StreamClosed as exc:
            self._fail(str(exc))
        del buffer[:offset]
        for stream in touched:
            stream.deliver()

    # -- frames from the endpoint --------------------------------------------------------------

    def _on_frame(self, kind: int, flags: int, stream_id: int, payload: bytes, touched: typing.Set[Stream]) -> None:
        if self._continued is not None and kind != CONTINUATION:
            raise StreamClosed("the endpoint interleaved a frame with a header block's CONTINUATION")
        stream = self.streams.get(stream_id) if stream_id else None
        if kind == DATA:
            self._acknowledge(len(payload), stream)
            if flags & PADDED:
                payload = payload[1:len(payload) - payload[0]]
            if stream is not None:
                if payload:
                    stream._chunks.append(payload)
                if flags & END_STREAM:
                    self._ended(stream)
                touched.add(stream)
        elif kind == HEADERS or kind == CONTINUATION:
            self._on_header_block(kind, flags, stream_id, payload, touched)
        elif kind == RST_STREAM:
            if stream is not None:
                self.forget(stream)
                code = U32.unpack(payload)[0]
                if stream.remote_closed and code == 0:
                    stream.local_closed = True  # a complete response; the rest of the request is not wanted
                else:
                    stream.on_end(StreamClosed(f"the endpoint reset the stream (error {code})"))
                touched.add(stream)
        elif kind == SETTINGS:
            if not flags & ACK:
                self._on_settings(payload)
        elif kind == PING:
            if not flags & ACK:
                self._transport_write(frame(PING, ACK, 0, payload))
        elif kind == GOAWAY:
            self._on_goaway(payload, touched)
        elif kind == WINDOW_UPDATE:
            increment = U32.unpack(payload)[0] & MAX_STREAM_ID
            if stream_id == 0:
                self.send_window += increment
                waiting = list(self.window_waiters)
            elif stream is not None:
                stream.send_window += increment
                waiting = [stream]
            else:
                waiting = []
            for waiter in waiting:
                self.window_waiters.discard(waiter)
                waiter.wake_sender()
        elif kind == PUSH_PROMISE:
            raise StreamClosed("the endpoint pushed a stream, which this client disabled")
        # PRIORITY and unknown frame types are ignored, as the protocol asks.

    def _on_header_block(self, kind: int, flags: int, stream_id: int, payload: bytes,
                         touched: typing.Set[Stream]) -> None:
        if kind == HEADERS:
            if flags & PADDED:
                payload = payload[1:len(payload) - payload[0]]
            if flags & PRIORITY_FLAG:
                payload = payload[5:]
            self._continued = (stream_id, flags, bytearray(payload))
        elif self._continued is None or self._continued[0] != stream_id:
            raise StreamClosed("the endpoint sent a CONTINUATION that continues nothing")
        else:
            self._continued[2].extend(payload)
        if not flags & END_HEADERS:
            return
        stream_id, first_flags, block = self._continued
        self._continued = None
        headers = self._decoder.decode(bytes(block), raw=True)  # always: it keeps the peer's table in step
        stream = self.streams.get(stream_id)
        if stream is not None:
            stream.on_headers(typing.cast(typing.List[typing.Tuple[bytes, bytes]], headers))
            if first_flags & END_STREAM:
                self._ended(stream)
            touched.add(stream)

    def _ended(self, stream: Stream) -> None:
        stream.on_end()
        if stream.local_closed:
            self.forget(stream)

    def _acknowledge(self, length: int, stream: typing.Optional[Stream]) -> None:
        """Give received bytes back to the endpoint's windows, in halves of ours: few WINDOW_UPDATEs."""
        if not length:
            return
        self._unacknowledged += length
        updates = b""
        if self._unacknowledged >= WINDOW // 2:
            updates += frame(WINDOW_UPDATE, 0, 0, U32.pack(self._unacknowledged))
            self._unacknowledged = 0
        if stream is not None:
            stream.unacknowledged += length
            if stream.unacknowledged >= WINDOW // 2:
                updates += frame(WINDOW_UPDATE, 0, stream.id, U32.pack(stream.unacknowledged))
                stream.unacknowledged = 0
        self._transport_write(updates)

    def _on_settings(self, payload: bytes) -> None:
        for offset in range(0, len(payload) - len(payload) % 6, 6):
            setting, value = SETTING.unpack_from(payload, offset)
            if setting == INITIAL_WINDOW_SIZE:
                delta, self.peer_initial_window = value - self.peer_initial_window, value
                for stream in self.streams.values():
                    stream.send_window += delta
                    stream.wake_sender()
                self.window_waiters.clear()
            elif setting == MAX_FRAME_SIZE:
                self.peer_max_frame = value
            elif setting == MAX_CONCURRENT_STREAMS:
                self.peer_max_streams = value
        self._transport_write(frame(SETTINGS, ACK, 0))

    def _on_goaway(self, payload: bytes, touched: typing.Set[Stream]) -> None:
        """No new streams here; those the endpoint never processed fail (nothing happened on them)."""
        last_stream, code = U32.unpack_from(payload)[0] & MAX_STREAM_ID, U32.unpack_from(payload, 4)[0]
        self.closed = True
        self._error = StreamClosed(f"the endpoint ended the connection (GOAWAY, error {code})")
        for stream in [s for s in self.streams.values() if s.id > last_stream]:
            self.forget(stream)
            stream.on_end(self._error)
            touched.add(stream)

    def _transport_write(self, data: bytes) -> None:
        if data and self._transport is not None and not self._transport.is_closing():
            self._queue(data)

    def _fail(self, reason: str) -> None:
        self._error = StreamClosed(reason)
        self.closed = True
        self._outgoing.append(frame(GOAWAY, 0, 0, U32.pack(0) + U32.pack(PROTOCOL_ERROR)))
        self._write_out()
        if self._transport is not None:
            self._transport.close()


class H2Client:
    """Connections to endpoints by authority, opened on demand and replaced when they close."""

    def __init__(self, connect_timeout: float = 10.0) -> None:
        self.connect_timeout = connect_timeout
        self._connections: typing.Dict[typing.Tuple[str, int], H2Connection] = {}
        self._lock = asyncio.Lock()

    async def open(self, url: str, headers: typing.Mapping[str, str]) -> Stream:
        parts = urlsplit(url)
        if parts.scheme != "http":
            raise StreamClosed(f"bidirectional streams need http:// (HTTP/2 cleartext), not {parts.scheme}://")
        authority = (parts.hostname or "localhost", parts.port or 80)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        connection = self._connections.get(authority)
        if connection is None or not connection.available():
            async with self._lock:
                connection = self._connections.get(authority)
                if connection is None or not connection.available():
                    connection = H2Connection(*authority)
                    await connection.connect(self.connect_timeout)
                    self._connections[authority] = connection
        return connection.open(path, headers)

    async def close(self) -> None:
        for connection in self._connections.values():
            await connection.close()
        self._connections.clear()
