"""One LISTEN connection per process, fanned out in memory.

LISTEN is only ever a hint: every consumer also polls, so a dropped connection or a lost
notification costs latency, not correctness. The connection is re-established with backoff.
"""

from __future__ import annotations

import asyncio
import logging
import typing

import psycopg

logger = logging.getLogger("restate_pg.listener")


class Listener:
    def __init__(
        self,
        conninfo: str,
        channels: typing.Sequence[str],
        on_notify: typing.Callable[[str, str], None],
        on_reconnect: typing.Callable[[], None],
    ) -> None:
        self._conninfo = conninfo
        self._channels = list(channels)
        self._on_notify = on_notify
        self._on_reconnect = on_reconnect
        self._task: typing.Optional[asyncio.Task[None]] = None
        self.connected = asyncio.Event()

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass

    async def _run(self) -> None:
        backoff = 0.1
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(self._conninfo, autocommit=True) as conn:
                    for channel in self._channels:
                        await conn.execute(f'LISTEN "{channel}"')
                    backoff = 0.1
                    self.connected.set()
                    self._on_reconnect()  # anything sent while we were away is found by polling now
                    async for notify in conn.notifies():
                        self._on_notify(notify.channel, notify.payload)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.connected.clear()
                logger.warning("LISTEN connection lost (%s); reconnecting in %.1fs", exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
