"""Waiting on a future with a deadline in one wake-up of the waiting task.

`asyncio.wait_for` (and `shield`, to keep the future alive past the deadline) chain futures and
tasks: each link is another turn of the event loop before the waiting task runs, and on a busy
loop a turn waits behind everything else that is ready (about a millisecond per link in the
TypeScript W3 benchmark). Here the deadline settles the future itself, so the task awaits the
future it needs and nothing else. The future must be the waiter's own: settling it early is how
the deadline is told."""

from __future__ import annotations

import asyncio
import typing

T = typing.TypeVar("T")


def settle_later(future: "asyncio.Future[T]", delay: typing.Optional[float], result: typing.Any = None,
                 exception: typing.Optional[BaseException] = None) -> typing.Optional[asyncio.TimerHandle]:
    """After `delay` seconds (never with None), give `future` `result` or `exception` unless it is
    done by then; cancel the handle once the future is awaited."""
    if delay is None:
        return None
    return future.get_loop().call_later(delay, _settle, future, result, exception)


def _settle(future: "asyncio.Future[typing.Any]", result: typing.Any, exception: typing.Optional[BaseException]) -> None:
    if future.done():
        return
    if exception is not None:
        future.set_exception(exception)
    else:
        future.set_result(result)
