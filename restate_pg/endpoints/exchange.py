"""The two ways an attempt exchanges messages with an endpoint (Restate's transport modes).

- Request-response (HTTP/1.1, or any endpoint that asks for it): the start message and the
  journal go out, the request ends, the endpoint's messages come back. Whatever it waits for
  that is not in the journal makes it suspend; the attempt then resumes it with a new exchange.
  Over HTTP/2 it runs on the same client as bidirectional streams, not httpx's: httpx allows one
  stream per connection until the server announces SETTINGS_MAX_CONCURRENT_STREAMS, which Node's
  HTTP/2 server never does, so one long-running handler held every other invocation back.
- Bidirectional (HTTP/2 cleartext): the request stays open. What the endpoint waits for (a run's
  acknowledgement, a call's result, a timer, an awakeable) goes out on the same stream as soon as
  it is stored, so a handler of n steps is replayed once, not n times. After the handler's
  inactivity timeout with nothing to send, the request ends and the endpoint suspends.
"""

from __future__ import annotations

import asyncio
import typing
from datetime import datetime

from restate_pg.endpoints.endings import Ending, Failed
from restate_pg.endpoints.h2c import Stream, StreamClosed
from restate_pg.protocol.errors import INTERNAL, UNSUPPORTED_MEDIA_TYPE
from restate_pg.protocol.framing import FrameDecoder, encode_frame

if typing.TYPE_CHECKING:
    from restate_pg.endpoints.attempt import EndpointAttempt

_NO_TERMINAL = "the endpoint closed the stream without an end, suspension or error message"


def _refused(status: int, body: bytes) -> Failed:
    text = body[:500].decode("utf-8", errors="replace").strip()
    return Failed(UNSUPPORTED_MEDIA_TYPE if status == 415 else INTERNAL, f"the endpoint answered {status}: {text}".strip())


async def request_response(attempt: "EndpointAttempt", url: str, headers: typing.Dict[str, str], body: bytes) -> Ending:
    attempt.streaming = False
    if not attempt.handler.use_http_11:
        return await _request_response_h2c(attempt, url, headers, body)
    client = attempt.host.http_client(True)
    async with client.stream("POST", url, content=body, headers=headers, timeout=attempt.handler.abort_timeout) as response:
        if response.status_code != 200:
            return _refused(response.status_code, await response.aread())
        decoder = FrameDecoder()
        async for chunk in response.aiter_raw():
            if (ending := await _received(attempt, decoder, chunk)) is not None:
                return ending
    return Failed(INTERNAL, _NO_TERMINAL)


async def _received(attempt: "EndpointAttempt", decoder: FrameDecoder, chunk: bytes) -> typing.Optional[Ending]:
    """Hand each whole frame of `chunk` to the attempt: the ending, if one of them ends the exchange."""
    for frame in decoder.feed(chunk):
        ending = await attempt.on_frame(frame, attempt.handler.version)
        if ending is not None:
            return ending
    return None


async def _request_response_h2c(attempt: "EndpointAttempt", url: str, headers: typing.Dict[str, str],
                                body: bytes) -> Ending:
    """Request-response over HTTP/2 cleartext: the request ends with the journal; each read of
    the response waits at most the abort timeout (as httpx's read timeout does over HTTP/1.1)."""
    stream, status = await _open(attempt, url, headers, body, end=True)
    timeout = attempt.handler.abort_timeout
    ended = False  # by the endpoint's last message: the stream is closed, not reset
    try:
        if status != 200:
            return _refused(status, await _rest(stream))
        decoder = FrameDecoder()
        while True:
            try:
                chunk = await asyncio.wait_for(stream.read(), timeout)
            except asyncio.TimeoutError:
                return Failed(INTERNAL, f"the endpoint sent nothing for the abort timeout ({timeout:g}s)")
            if chunk is None:
                return Failed(INTERNAL, _NO_TERMINAL)
            if (ending := await _received(attempt, decoder, chunk)) is not None:
                ended = True
                return ending
    finally:
        await (stream.finish() if ended else stream.reset())


async def _rest(stream: Stream) -> bytes:
    chunks = []
    while (chunk := await stream.read()) is not None:
        chunks.append(chunk)
    return b"".join(chunks)


async def _open(attempt: "EndpointAttempt", url: str, headers: typing.Dict[str, str], body: bytes,
                end: bool = False) -> typing.Tuple[Stream, int]:
    """Open the stream and send the journal (and with `end`, end the request); a connection the
    endpoint closed just as the stream opened on it is replaced once (nothing was received:
    nothing happened)."""
    for retry in (False, True):
        stream = await attempt.host.h2_client().open(url, headers)
        try:
            await stream.send(body, end=end)
            return stream, await stream.response(attempt.handler.abort_timeout)
        except StreamClosed:
            await stream.reset()
            if retry:
                raise
    raise AssertionError("unreachable")


class _Fired(typing.NamedTuple):
    """What a read waiting on the endpoint gets when a timer or deadline passed first: the clock's
    time when it did (the moment a timer fired, read before the task runs behind the loop's
    other ready callbacks)."""

    at: datetime


#: What a read waiting on the endpoint gets when the attempt's mailbox has news first.
_WOKEN = object()


def _interrupt(read: "asyncio.Future[typing.Any]", value: typing.Any) -> None:
    if not read.done():
        read.set_result(value)


def _fire(read: "asyncio.Future[typing.Any]", clock: typing.Callable[[], datetime]) -> None:
    _interrupt(read, _Fired(clock()))


async def bidirectional(attempt: "EndpointAttempt", url: str, headers: typing.Dict[str, str], body: bytes) -> Ending:
    """The exchange's task waits on one future, the stream's next read: news in the mailbox
    (`attempt.wake`) and the next timer or deadline settle that read themselves (`_WOKEN`,
    `_Fired`), so whatever comes first wakes the task in one turn of the event loop (core/wakeups.py)."""
    attempt.streaming = True
    stream, status = await _open(attempt, url, headers, body)
    loop = asyncio.get_running_loop()
    reader: typing.Optional[asyncio.Future[typing.Any]] = None
    ended = False  # by the endpoint's last message: the stream is closed, not reset
    try:
        if status != 200:
            return _refused(status, await _rest(stream))
        decoder = FrameDecoder()
        journal = attempt.journal
        clock = attempt.host.clock
        inactivity = attempt.handler.inactivity_timeout
        if inactivity is None:
            inactivity = attempt.host.default_inactivity_timeout
        idle_since = loop.time()
        closed_at: typing.Optional[float] = None
        reader = stream.next_chunk()
        attempt.on_wake = lambda: _interrupt(reader, _WOKEN)  # type: ignore[arg-type]  # the current read
        while True:
            if closed_at is None:
                timeout: typing.Optional[float] = max(0.0, idle_since + inactivity - loop.time())
            else:
                timeout = closed_at + attempt.handler.abort_timeout - loop.time()
                if timeout <= 0:
                    return Failed(500, f"the endpoint did not end or suspend within the abort timeout "
                                       f"({attempt.handler.abort_timeout:g}s) after the request ended")
            timer = journal.next_timer()
            if timer is not None:
                until_timer = max(0.0, clock.seconds_until(timer))
                timeout = until_timer if timeout is None else min(timeout, until_timer)
            fired: typing.Optional[datetime] = None
            if not reader.done() and not attempt.woken.is_set():
                deadline = None if timeout is None else loop.call_later(timeout, _fire, reader, clock.now)
                await reader
                if deadline is not None:
                    deadline.cancel()
            if reader.done():
                chunk = reader.result()
                if isinstance(chunk, _Fired):
                    fired = chunk.at
                elif chunk is not _WOKEN:
                    if chunk is None:
                        return Failed(INTERNAL, _NO_TERMINAL)
                    if (ending := await _received(attempt, decoder, chunk)) is not None:
                        ended = True
                        return ending
                    idle_since = loop.time()
                reader = stream.next_chunk()  # what arrived meanwhile, at once
            if attempt.woken.is_set():
                attempt.woken.clear()
                await attempt.read_mailbox()
            if journal.sleeping:
                journal.fire_timers(fired or clock.now())
            if journal.awaits_answer():
                await attempt.flush(None)  # stored before the endpoint sees it
                outgoing = journal.take_outbox()
                if outgoing:
                    attempt.stop_waiting()  # what it waits for may be among them
                    await stream.send(b"".join(encode_frame(kind, message) for kind, message in outgoing))
                    idle_since = loop.time()
            elif closed_at is None and loop.time() - idle_since >= inactivity:
                await stream.end()  # nothing to send for a while: let the endpoint suspend
                closed_at = loop.time()
    finally:
        attempt.on_wake = None
        attempt.stop_waiting()  # the attempt's slot is released when it ends
        if reader is not None and not reader.done():
            reader.cancel()
        await (stream.finish() if ended else stream.reset())
