"""The store for one operator command: opened, used, closed, on its own event loop."""

from __future__ import annotations

import asyncio
import typing

from restate_pg.store.driver import Store

T = typing.TypeVar("T")


def with_store(url: str, schema: str, use: typing.Callable[[Store], typing.Awaitable[T]]) -> T:
    """Run `use(store)` with a small connection pool on `url`, then close it."""

    async def run() -> T:
        store = Store(url, schema, min_size=1, max_size=2, prepare=False)
        await store.open()
        try:
            return await use(store)
        finally:
            await store.close()

    return asyncio.run(run())
