"""Waiting for a state the system reaches asynchronously, with a liveness bound: the suite's one
polling helper (`eventually`, and `eventually_sync` for tests that drive a subprocess from a
thread without an event loop).

The contract, for both:
- `probe()` is asked until its answer is `expected` (compared with ==), or, when no `expected` is
  given, until the answer is truthy. It may be a plain function or return an awaitable.
- Without `what`, the last answer is returned either way, for the caller to assert on: a timeout
  then fails on the state that was seen. With `what`, a timeout raises AssertionError naming it.
- The bound is for liveness only, long enough for a worker process to start on a loaded machine;
  the interval is short, so a test waits about as long as the system takes.

Never poll for "nothing happened": wait instead for a positive event that must come after the
non-event, or check a state from which the event cannot happen any more (no invocation row).
"""

from __future__ import annotations

import asyncio
import inspect
import time
import typing

T = typing.TypeVar("T")

#: The default bound, in seconds.
TIMEOUT_S = 30.0
#: Between two probes, in seconds.
INTERVAL_S = 0.02


class _Truthy:
    def __repr__(self) -> str:
        return "a truthy answer"


TRUTHY: typing.Any = _Truthy()


def _settled(seen: typing.Any, expected: typing.Any) -> bool:
    return bool(seen) if expected is TRUTHY else seen == expected


def _timed_out(seen: typing.Any, expected: typing.Any, what: typing.Optional[str], timeout_s: float) -> typing.Any:
    if what is None:
        return seen
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what} (expected {expected!r}, last saw {seen!r})")


async def eventually(
    probe: typing.Callable[[], typing.Union[T, typing.Awaitable[T]]],
    expected: typing.Any = TRUTHY,
    *,
    timeout_s: float = TIMEOUT_S,
    interval_s: float = INTERVAL_S,
    what: typing.Optional[str] = None,
) -> T:
    """Poll `probe` until it answers `expected` (or anything truthy), for at most `timeout_s`; its
    last answer (see the module's contract for `what`)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        seen = probe()
        if inspect.isawaitable(seen):
            seen = await seen
        if _settled(seen, expected):
            return typing.cast(T, seen)
        if loop.time() > deadline:
            return typing.cast(T, _timed_out(seen, expected, what, timeout_s))
        await asyncio.sleep(interval_s)


def eventually_sync(
    probe: typing.Callable[[], T],
    expected: typing.Any = TRUTHY,
    *,
    timeout_s: float = TIMEOUT_S,
    interval_s: float = INTERVAL_S,
    what: typing.Optional[str] = None,
) -> T:
    """`eventually` for code without an event loop (a test driving a server process over HTTP)."""
    deadline = time.monotonic() + timeout_s
    while True:
        seen = probe()
        if _settled(seen, expected):
            return seen
        if time.monotonic() > deadline:
            return typing.cast(T, _timed_out(seen, expected, what, timeout_s))
        time.sleep(interval_s)


async def row(engine: typing.Any, sql: str, *params: typing.Any) -> typing.Optional[typing.Tuple[typing.Any, ...]]:
    """The first row of `sql`, read through the engine's own pool."""
    async with engine.store.pool.connection() as conn:
        return await (await conn.execute(sql, params)).fetchone()


async def invocation_count(engine: typing.Any) -> int:
    """How many invocations exist: 0 after a refusal proves that no handler will ever run for it
    (a refused request is answered before any invocation row is written), without waiting."""
    found = await row(engine, "SELECT count(*) FROM restate.invocation")
    return int(found[0]) if found is not None else 0
