"""restate_pg.cli.http_protocol: a response's head and body leave in one write, every byte in
order, nothing held past the event loop's turn or a close. The transport under it records the
writes it is given (a real socket would merge or split them as the kernel pleases); the served
responses are checked end to end by every ingress test."""

from __future__ import annotations

import asyncio
import typing

import httpx
import pytest

from restate_pg.cli.http_protocol import _JoiningTransport
from restate_pg.cli.servers import running, uvicorn_server


class RecordingTransport:
    def __init__(self) -> None:
        self.writes: typing.List[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        assert not self.closed
        self.writes.append(data)

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def get_extra_info(self, name: str) -> str:
        return f"info:{name}"


async def turn() -> None:
    """Let the event loop finish its current turn (what was scheduled with call_soon runs)."""
    await asyncio.sleep(0)


async def test_head_and_body_leave_together() -> None:
    raw = RecordingTransport()
    joined = _JoiningTransport(raw, asyncio.get_running_loop())  # type: ignore[arg-type]
    joined.write(b"HTTP/1.1 200 OK\r\n\r\n")
    joined.write(b"body")
    assert raw.writes == [b"HTTP/1.1 200 OK\r\n\r\nbody"]
    joined.write(b"second head")
    assert raw.writes == [b"HTTP/1.1 200 OK\r\n\r\nbody"]  # held until the next write or the turn's end
    await turn()
    assert raw.writes[1:] == [b"second head"]
    joined.write(b"a")
    joined.write(b"b")
    joined.write(b"c")
    await turn()
    assert b"".join(raw.writes) == b"HTTP/1.1 200 OK\r\n\r\nbodysecond headabc"


async def test_a_close_sends_what_is_held_first() -> None:
    raw = RecordingTransport()
    joined = _JoiningTransport(raw, asyncio.get_running_loop())  # type: ignore[arg-type]
    joined.write(b"last words")
    joined.close()
    assert raw.writes == [b"last words"] and raw.closed
    await turn()
    assert raw.writes == [b"last words"]
    assert joined.get_extra_info("peername") == "info:peername"  # everything else is the transport's


@pytest.mark.parametrize("size", [0, 5, 200_000])
async def test_the_server_answers_whole_responses(size: int) -> None:
    async def app(scope: typing.Any, receive: typing.Any, send: typing.Any) -> None:
        if scope["type"] != "http":
            return
        body = b"x" * size
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", str(size).encode())]})
        await send({"type": "http.response.body", "body": body})

    server = uvicorn_server(app, log_level="warning", own_signals=False, host="127.0.0.1", port=0, lifespan="off")  # type: ignore[arg-type]
    async with running(server) as port:
        async with httpx.AsyncClient() as client:
            for _ in range(3):  # one keep-alive connection, one response after another
                response = await client.get(f"http://127.0.0.1:{port}/")
                assert response.status_code == 200 and response.content == b"x" * size
