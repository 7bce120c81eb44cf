"""`Turnstile`: lets the tool calls of one model response run one at a time, in the response's order.

A model may ask for several tools at once, and agent libraries run them concurrently; each tool
journals its `ctx.run`, and a journal must be written in the same order on every replay. So the
tool calls wait for their turn, in the order the (journaled) model response listed them. When one
fails, those after it are let through to fail too, instead of waiting forever.
"""

from __future__ import annotations

import asyncio
import typing

from restate_pg.api.errors import SdkInternalException


class Turnstile:
    """Turns in the order of `ids`: the first may pass at once, each next one after the one before."""

    def __init__(self, ids: typing.List[str]) -> None:
        self.turns = dict(zip(ids, ids[1:]))  # each id -> the id whose turn follows
        self.events = {turn: asyncio.Event() for turn in ids}
        self.canceled = False
        if ids:
            self.events[ids[0]].set()

    async def wait_for(self, id: str) -> None:
        """Return when it is `id`'s turn; raise when the turns were cancelled before it."""
        await self.events[id].wait()
        if self.canceled:
            raise SdkInternalException() from None

    def allow_next_after(self, id: str) -> None:
        following = self.turns.get(id)
        if following is not None:
            self.events[following].set()

    def cancel_all_after(self, id: str) -> None:
        """`id` failed: every later turn passes, and raises."""
        self.canceled = True
        following = self.turns.get(id)
        while following is not None:
            self.events[following].set()
            following = self.turns.get(following)

    def cancel_all(self) -> None:
        self.canceled = True
        for event in self.events.values():
            event.set()
