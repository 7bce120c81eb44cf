"""Waiting for a state the system reaches asynchronously, with a liveness bound."""

from __future__ import annotations

import asyncio
import typing

T = typing.TypeVar("T")


async def eventually(probe: typing.Callable[[], typing.Awaitable[T]], expected: T, *, timeout_s: float = 30.0) -> T:
    """Poll `probe` until it returns `expected`, for at most `timeout_s`; return its last answer,
    for the caller to assert on (so that a timeout fails with the state that was seen). The bound
    is for liveness only, long enough for a worker process to start on a loaded machine."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        seen = await probe()
        if seen == expected or loop.time() > deadline:
            return seen
        await asyncio.sleep(0.02)


async def row(engine: typing.Any, sql: str, *params: typing.Any) -> typing.Optional[typing.Tuple[typing.Any, ...]]:
    """The first row of `sql`, read through the engine's own pool."""
    async with engine.store.pool.connection() as conn:
        return await (await conn.execute(sql, params)).fetchone()
