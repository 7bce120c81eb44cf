"""A stand-in SDK endpoint that answers discovery only: it serves a manifest the test sets, over
real HTTP, until the SDK test endpoints (tests/endpoints/) serve the real ones.

`serve_manifest(http2=True)` runs hypercorn on a free port (HTTP/2 cleartext with prior
knowledge, and HTTP/1.1 on the same port); `http2=False` runs uvicorn, which speaks HTTP/1.1 only.
Each request is recorded (`seen`: path, HTTP version, headers) so tests can check what was asked.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import typing
from dataclasses import dataclass, field

import orjson

from restate_pg.testing.harness import serve_api

MANIFEST_V3 = "application/vnd.restate.endpointmanifest.v3+json"


def manifest(*services: typing.Dict[str, typing.Any], low: int = 5, high: int = 6,
             mode: typing.Optional[str] = "BIDI_STREAM") -> typing.Dict[str, typing.Any]:
    document: typing.Dict[str, typing.Any] = {"minProtocolVersion": low, "maxProtocolVersion": high,
                                              "services": list(services)}
    if mode is not None:
        document["protocolMode"] = mode
    return document


def service(name: str, ty: str = "SERVICE", *handlers: typing.Dict[str, typing.Any], **options: typing.Any) -> typing.Dict[str, typing.Any]:
    return {"name": name, "ty": ty, "handlers": list(handlers) or [{"name": "greet"}], **options}


@dataclass
class Endpoint:
    """What the stand-in answers (change it between requests), and what it was asked."""

    uri: str = ""
    document: typing.Any = field(default_factory=lambda: manifest(service("Greeter")))
    status: int = 200
    content_type: typing.Optional[str] = MANIFEST_V3
    server_header: typing.Optional[str] = "restate-sdk-typescript/1.17.2"
    body: typing.Optional[bytes] = None  # served as is instead of the document
    #: Manifests served at other paths (`/v2/discover`: the endpoint registered as `{uri}/v2`).
    others: typing.Dict[str, typing.Any] = field(default_factory=dict)
    seen: typing.List[typing.Dict[str, typing.Any]] = field(default_factory=list)

    async def __call__(self, scope: typing.Any, receive: typing.Any, send: typing.Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        self.seen.append({"path": scope["path"], "http_version": scope["http_version"],
                          "headers": {k.decode(): v.decode() for k, v in scope["headers"]}})
        if scope["path"] != "/discover" and scope["path"] not in self.others:
            await _respond(send, 404, b"not found", [(b"content-type", b"text/plain")])
            return
        headers = [] if self.content_type is None else [(b"content-type", self.content_type.encode())]
        if self.server_header is not None:
            headers.append((b"x-restate-server", self.server_header.encode()))
        if scope["path"] in self.others:
            await _respond(send, 200, orjson.dumps(self.others[scope["path"]]), headers)
            return
        await _respond(send, self.status, self.body if self.body is not None else orjson.dumps(self.document), headers)


async def _respond(send: typing.Any, status: int, body: bytes, headers: typing.List[typing.Tuple[bytes, bytes]]) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


@contextlib.asynccontextmanager
async def serve_manifest(http2: bool = True) -> typing.AsyncIterator[Endpoint]:
    """A stand-in endpoint on a free port of 127.0.0.1, for the block's duration."""
    endpoint = Endpoint()
    if not http2:
        async with serve_api(typing.cast(typing.Any, endpoint)) as base_url:
            endpoint.uri = base_url
            yield endpoint
        return
    from hypercorn.asyncio import serve
    from hypercorn.config import Config

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)  # listening before the server runs: a connection made now waits in the backlog
    port = sock.getsockname()[1]
    config = Config()
    config.bind = [f"fd://{sock.detach()}"]  # hypercorn owns (and closes) the socket from here
    config.accesslog = None
    config.errorlog = None
    stopped = asyncio.Event()
    server = asyncio.ensure_future(serve(typing.cast(typing.Any, endpoint), config, shutdown_trigger=stopped.wait))
    endpoint.uri = f"http://127.0.0.1:{port}"
    try:
        yield endpoint
    finally:
        stopped.set()
        await server
