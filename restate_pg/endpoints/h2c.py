"""A small HTTP/2 cleartext client (prior knowledge) with full-duplex streams.

Why not httpx: its HTTP/2 transport sends the whole request body before it reads the response,
so an exchange where the endpoint answers while the server still writes (Restate's
bidirectional mode: completions go out while the handler runs) cannot be written with it. This
module keeps one connection per endpoint authority, multiplexes invocations as streams on it, and
lets each stream write and read at the same time, under HTTP/2 flow control (the `h2` library
does the protocol; this is the asyncio glue).
"""

from __future__ import annotations

import asyncio
import typing
from urllib.parse import urlsplit

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings

#: Our receive window per stream and connection: large, so that endpoints are never throttled by us.
WINDOW = 16 * 1024 * 1024


class StreamClosed(ConnectionError):
    """The stream or its connection ended before the exchange did."""


class Stream:
    """One request: write frames with `send`, end the request with `end`, read the response."""

    def __init__(self, connection: "H2Connection", stream_id: int) -> None:
        self._connection = connection
        self.id = stream_id
        self.status: typing.Optional[int] = None
        self.headers: typing.Dict[str, str] = {}
        self._responded = asyncio.Event()
        self._chunks: "asyncio.Queue[typing.Optional[bytes]]" = asyncio.Queue()
        self._window = asyncio.Event()
        self.error: typing.Optional[BaseException] = None
        self.local_closed = False

    async def response(self) -> int:
        """Wait for the response's headers; its status."""
        await self._responded.wait()
        if self.status is None:
            raise StreamClosed(f"the stream ended before a response: {self.error!r}")
        return self.status

    async def send(self, data: bytes) -> None:
        """Write `data` to the request body, waiting for flow-control window as needed."""
        conn = self._connection
        view = memoryview(data)
        while view:
            if self.error is not None:
                raise StreamClosed(str(self.error))
            try:
                window = min(conn.h2.local_flow_control_window(self.id), conn.h2.max_outbound_frame_size)
                if window > 0:
                    chunk, view = view[:window], view[window:]
                    conn.h2.send_data(self.id, bytes(chunk))
            except h2.exceptions.ProtocolError as exc:  # the connection ended (GOAWAY) before its socket did
                raise StreamClosed(f"the connection to the endpoint ended: {exc}") from exc
            if window <= 0:
                self._window.clear()
                await conn.flush()  # what is buffered (the request's headers) goes out before waiting
                await self._window.wait()
                continue
            await conn.flush()

    async def end(self) -> None:
        """End the request body (the endpoint then finishes or suspends)."""
        if self.local_closed or self.error is not None:
            return
        self.local_closed = True
        try:
            self._connection.h2.end_stream(self.id)
            await self._connection.flush()
        except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError):
            pass

    async def read(self) -> typing.Optional[bytes]:
        """The next chunk of the response body; None at its end. Raises StreamClosed on a reset."""
        chunk = await self._chunks.get()
        if chunk is None and self.error is not None:
            raise StreamClosed(str(self.error))
        return chunk

    async def finish(self) -> None:
        """Close the exchange after the endpoint's last message: END_STREAM on the request, not
        RST_STREAM. Endpoints count resets against a rate limit (Node's HTTP/2 server, hence the
        TypeScript SDK, drops the connection of a client resetting more than about 33 streams a
        second beyond a burst of 1,000), so resetting every finished stream breaks connections under load."""
        await self.end()
        self._connection.streams.pop(self.id, None)

    async def reset(self) -> None:
        """Abandon the exchange."""
        if self.error is None:
            try:
                self._connection.h2.reset_stream(self.id)
                await self._connection.flush()
            except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError, OSError):
                pass
        self._connection.streams.pop(self.id, None)

    # -- events from the connection --------------------------------------------------------------

    def _on_response(self, headers: typing.Sequence[typing.Tuple[bytes, bytes]]) -> None:
        for name, value in headers:
            key = name.decode() if isinstance(name, bytes) else name
            text = value.decode() if isinstance(value, bytes) else value
            if key == ":status":
                self.status = int(text)
            else:
                self.headers[key] = text
        self._responded.set()

    def _on_data(self, data: bytes) -> None:
        self._chunks.put_nowait(data)

    def _on_end(self, error: typing.Optional[BaseException] = None) -> None:
        self.error = error
        self._responded.set()
        self._window.set()
        self._chunks.put_nowait(None)


class H2Connection:
    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.h2 = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding=None))
        self.streams: typing.Dict[int, Stream] = {}
        self._reader: typing.Optional[asyncio.StreamReader] = None
        self._writer: typing.Optional[asyncio.StreamWriter] = None
        self._task: typing.Optional[asyncio.Task[None]] = None
        self.closed = False

    async def connect(self, timeout: float) -> None:
        self._reader, self._writer = await asyncio.wait_for(asyncio.open_connection(self.host, self.port), timeout)
        self.h2.local_settings = h2.settings.Settings(client=True, initial_values={
            h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: WINDOW, h2.settings.SettingCodes.ENABLE_PUSH: 0})
        self.h2.initiate_connection()
        self.h2.increment_flow_control_window(WINDOW)
        await self.flush()
        self._task = asyncio.ensure_future(self._read_loop())

    async def flush(self) -> None:
        data = self.h2.data_to_send()
        if data and self._writer is not None:
            self._writer.write(data)
            await self._writer.drain()

    def available(self) -> bool:
        if self.closed:
            return False
        limit = self.h2.remote_settings.max_concurrent_streams
        return self.h2.open_outbound_streams < limit

    async def open(self, path: str, headers: typing.Mapping[str, str]) -> Stream:
        """A new stream with the request's headers buffered: they go out with the first `send`
        (one write for the headers and the journal), or with any other flush of the connection."""
        stream_id = self.h2.get_next_available_stream_id()
        stream = self.streams[stream_id] = Stream(self, stream_id)
        authority = f"{self.host}:{self.port}"
        request = [(":method", "POST"), (":scheme", "http"), (":authority", authority), (":path", path),
                   *((k.lower(), v) for k, v in headers.items())]
        self.h2.send_headers(stream_id, [(k.encode(), v.encode()) for k, v in request])
        return stream

    async def _read_loop(self) -> None:
        assert self._reader is not None
        error: BaseException = StreamClosed("the connection closed")
        try:
            while True:
                data = await self._reader.read(65536)
                if not data:
                    break
                for event in self.h2.receive_data(data):
                    self._dispatch(event)
                await self.flush()
        except (OSError, h2.exceptions.ProtocolError) as exc:
            error = exc
        finally:
            self.closed = True
            for stream in list(self.streams.values()):
                stream._on_end(error)
            self.streams.clear()
            if self._writer is not None:
                self._writer.close()

    def _dispatch(self, event: h2.events.Event) -> None:
        stream = self.streams.get(getattr(event, "stream_id", 0) or 0)
        if isinstance(event, h2.events.ResponseReceived) and stream is not None:
            stream._on_response(event.headers)
        elif isinstance(event, h2.events.DataReceived):
            if event.flow_controlled_length:
                self.h2.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            if stream is not None:
                stream._on_data(event.data)
        elif isinstance(event, h2.events.StreamEnded) and stream is not None:
            self.streams.pop(stream.id, None)
            stream._on_end()
        elif isinstance(event, h2.events.StreamReset) and stream is not None:
            self.streams.pop(stream.id, None)
            stream._on_end(StreamClosed(f"the endpoint reset the stream (error {event.error_code})"))
        elif isinstance(event, h2.events.WindowUpdated):
            for waiting in ([stream] if stream is not None else list(self.streams.values())):
                waiting._window.set()
        elif isinstance(event, h2.events.ConnectionTerminated):
            self.closed = True

    async def close(self) -> None:
        self.closed = True
        if self._task is not None:
            self._task.cancel()
        if self._writer is not None:
            self._writer.close()


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
        async with self._lock:
            connection = self._connections.get(authority)
            if connection is None or not connection.available():
                connection = H2Connection(*authority)
                await connection.connect(self.connect_timeout)
                self._connections[authority] = connection
        return await connection.open(path, headers)

    async def close(self) -> None:
        for connection in self._connections.values():
            await connection.close()
        self._connections.clear()
