"""restate_pg.endpoints.h2c, the HTTP/2 cleartext client of the endpoint exchanges, against Node's
own HTTP/2 server (tests/support/h2_server.js; the TypeScript SDK's endpoint().listen() is that
server): full duplex, flow control both ways, multiplexing, CONTINUATION, trailers, and each way a
stream or connection can end."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import typing

import hpack
import pytest

from restate_pg.endpoints.h2c import H2Client, Stream, StreamClosed
from restate_pg.endpoints.h2frames import encode_headers
from tests.support.processes import REPO

SERVER = REPO / "tests" / "support" / "h2_server.js"


def _start(env: typing.Optional[typing.Dict[str, str]] = None) -> typing.Iterator[str]:
    node = shutil.which("node")
    assert node is not None, "node is needed: the TypeScript endpoints run on it"
    process = subprocess.Popen([node, str(SERVER)], stdout=subprocess.PIPE, env={**os.environ, **(env or {})})
    try:
        assert process.stdout is not None
        port = process.stdout.readline().decode().strip()
        assert port.isdigit(), f"the server printed {port!r}"
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(10)


@pytest.fixture(scope="module")
def server() -> typing.Iterator[str]:
    yield from _start()


@pytest.fixture
async def client() -> typing.AsyncIterator[H2Client]:
    h2 = H2Client()
    yield h2
    await h2.close()


async def _body(stream: Stream) -> bytes:
    chunks = []
    while (chunk := await stream.read()) is not None:
        chunks.append(chunk)
    return b"".join(chunks)


async def test_a_stream_is_full_duplex(server: str, client: H2Client) -> None:
    stream = await client.open(f"{server}/echo", {"content-type": "application/octet-stream"})
    await stream.send(b"first")
    assert await stream.response() == 200
    assert await stream.read() == b"first"  # answered while the request is still open
    await stream.send(b"second")
    assert await stream.read() == b"second"
    await stream.end()
    assert await stream.read() is None
    await stream.finish()


async def test_bodies_larger_than_every_window_go_both_ways(server: str, client: H2Client) -> None:
    payload = bytes(range(256)) * 4096 * 3  # 3 MiB: many times Node's 64 KiB windows
    stream = await client.open(f"{server}/count", {})
    await stream.send(payload, end=True)
    assert await stream.response() == 200
    assert await _body(stream) == str(len(payload)).encode()
    big = await client.open(f"{server}/big", {"x-size": str(len(payload))})
    await big.end()
    assert await big.response() == 200
    assert await _body(big) == b"\x07" * len(payload)


async def test_many_streams_share_one_connection(server: str, client: H2Client) -> None:
    async def echo(n: int) -> typing.Tuple[str, bytes]:
        stream = await client.open(f"{server}/echo", {})
        await stream.send(f"stream {n};".encode() * 50, end=True)
        assert await stream.response() == 200
        body = await _body(stream)
        await stream.finish()
        return stream.headers["x-session"], body

    results = await asyncio.gather(*(echo(n) for n in range(300)))
    assert {session for session, _ in results} == {results[0][0]}
    assert [body for _, body in results] == [f"stream {n};".encode() * 50 for n in range(300)]


async def test_finished_streams_are_never_reset(server: str, client: H2Client) -> None:
    """Node drops a client that resets more than 1,000 streams in a burst: 1,100 exchanges in a
    row, each ended by the endpoint and finished by us, keep the one connection."""
    sessions = set()
    for n in range(1100):
        stream = await client.open(f"{server}/early", {})
        await stream.send(b"x")
        assert await stream.response() == 202
        assert await stream.read() is None
        await stream.finish()
        sessions.add(stream._connection)
    assert len(sessions) == 1
    assert not next(iter(sessions)).streams  # each one forgotten once both sides ended


async def test_headers_larger_than_a_frame_use_continuation(server: str, client: H2Client) -> None:
    stream = await client.open(f"{server}/echo", {"x-big": "r" * 40_000})
    await stream.end()
    assert await stream.response() == 200
    assert stream.headers["x-request-header-bytes"] == "40000"
    big = await client.open(f"{server}/big", {"x-size": "3", "x-header-size": "50000"})
    await big.end()
    assert await big.response() == 200
    assert big.headers["x-big"] == "h" * 50_000
    assert await _body(big) == b"\x07" * 3


async def test_trailers_end_the_body(server: str, client: H2Client) -> None:
    stream = await client.open(f"{server}/trailers", {})
    await stream.end()
    assert await stream.response() == 200
    assert await _body(stream) == b"body"


async def test_a_reset_stream_fails_and_the_connection_goes_on(server: str, client: H2Client) -> None:
    stream = await client.open(f"{server}/reset", {})
    await stream.send(b"hello")
    assert await stream.response() == 200
    with pytest.raises(StreamClosed, match="reset the stream"):
        while await stream.read() is not None:
            pass
    with pytest.raises(StreamClosed):
        await stream.send(b"more")
    after = await client.open(f"{server}/echo", {})
    await after.send(b"still here", end=True)
    assert await after.response() == 200
    assert await _body(after) == b"still here"
    assert after._connection is stream._connection


async def test_goaway_lets_the_stream_finish_and_moves_new_ones(server: str, client: H2Client) -> None:
    stream = await client.open(f"{server}/goaway", {})
    await stream.end()
    assert await stream.response() == 200
    assert await _body(stream) == b"bye"
    await stream.finish()
    after = await client.open(f"{server}/echo", {})
    await after.send(b"new connection", end=True)
    assert await after.response() == 200
    assert await _body(after) == b"new connection"
    assert int(after.headers["x-session"]) > int(stream.headers["x-session"])


async def test_a_dropped_connection_fails_its_streams(server: str, client: H2Client) -> None:
    waiting = await client.open(f"{server}/echo", {})
    await waiting.send(b"open")
    assert await waiting.response() == 200
    assert await waiting.read() == b"open"
    stream = await client.open(f"{server}/drop", {})
    await stream.send(b"x")
    with pytest.raises(StreamClosed):
        await stream.response()
        while await stream.read() is not None:
            pass
    with pytest.raises(StreamClosed):  # the other stream on that connection fails too
        await waiting.read()
    after = await client.open(f"{server}/echo", {})
    await after.send(b"again", end=True)
    assert await after.response() == 200
    assert await _body(after) == b"again"


async def test_the_servers_stream_limit_opens_another_connection() -> None:
    for url in _start({"MAX_STREAMS": "2"}):
        client = H2Client()
        try:
            first = await client.open(f"{url}/echo", {})
            await first.send(b"1")
            assert await first.response() == 200
            streams = [first]
            for n in range(2, 6):
                stream = await client.open(f"{url}/echo", {})
                await stream.send(str(n).encode())
                assert await stream.response() == 200
                streams.append(stream)
            assert [await stream.read() for stream in streams] == [b"1", b"2", b"3", b"4", b"5"]
            assert len({stream.headers["x-session"] for stream in streams}) == 3
        finally:
            await client.close()


async def test_an_unknown_path_answers_its_status(server: str, client: H2Client) -> None:
    stream = await client.open(f"{server}/nowhere", {})
    await stream.end()
    assert await stream.response() == 404
    assert await _body(stream) == b"no such path"


async def test_a_refused_connection_raises_a_connection_error() -> None:
    client = H2Client(connect_timeout=5)
    with pytest.raises(OSError):
        await client.open("http://127.0.0.1:9/x", {})


def test_request_headers_decode_as_written() -> None:
    """Our HPACK literals, read by an independent decoder: static-table names by index, others
    by name, lengths past the 7-bit prefix."""
    headers = [(":method", "POST"), (":path", "/invoke/S/h"), ("content-type", "application/vnd.restate.invocation.v5"),
               ("x-restate-custom", "v" * 300), ("accept", "")]
    decoded = hpack.Decoder().decode(encode_headers(headers))
    assert decoded == headers



def test_the_exchanges_run_on_uvloop(server: str) -> None:
    """restate-pg's processes run on uvloop (uvicorn's choice when it is installed), whose
    transports call the protocol in their own order: the same exchanges there."""
    import uvloop

    async def exchanges() -> None:
        client = H2Client()
        try:
            await test_a_stream_is_full_duplex(server, client)
            await test_bodies_larger_than_every_window_go_both_ways(server, client)
            await test_many_streams_share_one_connection(server, client)
        finally:
            await client.close()

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(exchanges())


async def test_waiting_for_the_response_has_a_deadline(server: str, client: H2Client) -> None:
    """/count answers only once the request ends: before that, the wait for its response ends at
    its deadline; the response that comes later is read as any, and the connection serves on."""
    late = await client.open(f"{server}/count", {"content-type": "application/octet-stream"})
    await late.send(b"not ended")
    with pytest.raises(asyncio.TimeoutError):
        await late.response(timeout=0.2)
    await late.end()
    assert await _body(late) == b"9"
    assert late.status == 200
    stream = await client.open(f"{server}/echo", {"content-type": "application/octet-stream"})
    await stream.send(b"still here", end=True)
    assert await stream.response(timeout=30) == 200
    assert await _body(stream) == b"still here"
