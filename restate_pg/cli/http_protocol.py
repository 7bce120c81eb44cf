"""uvicorn's HTTP/1.1 protocol with each response's head and body in one write.

uvicorn (0.30-0.35, httptools) writes a response's status line and headers as soon as the ASGI
app starts the response, and its body in a second `write`: two send(2) calls, two TCP segments,
and two wake-ups of the client per response. On the ingress's hot paths, where a response is a
few hundred bytes, that was a sixth of the serving process's time in the TypeScript W3 benchmark.
Here a write is held back until the next one, which carries it (the body after the head), or
until the end of the event loop's turn, whichever comes first; the order of the bytes and
every other call of the transport are unchanged.
"""

from __future__ import annotations

import asyncio
import typing


class _JoiningTransport:
    """Delegates to the socket's transport; `write` joins one held-back write to the next."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: typing.Optional[bytes] = None

    def write(self, data: bytes) -> None:
        held = self._held
        if held is None:
            self._held = bytes(data)
            self._loop.call_soon(self._release)
        else:
            self._held = None
            self._transport.write(held + data)

    def _release(self) -> None:
        held, self._held = self._held, None
        if held is not None and not self._transport.is_closing():
            self._transport.write(held)

    def close(self) -> None:
        self._release()
        self._transport.close()

    def __getattr__(self, name: str) -> typing.Any:
        return getattr(self._transport, name)


def joining_protocol(base: typing.Type[asyncio.Protocol]) -> typing.Type[asyncio.Protocol]:
    """`base` (uvicorn's `HttpToolsProtocol`) with its transport's writes joined as above."""

    class JoiningHttpProtocol(base):  # type: ignore[valid-type, misc]
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            loop = asyncio.get_running_loop()
            super().connection_made(_JoiningTransport(typing.cast(asyncio.Transport, transport), loop))

    return JoiningHttpProtocol
