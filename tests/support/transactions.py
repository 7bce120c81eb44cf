"""A transaction held open on a connection of its own, for tests that play a race step by step:
`begin` runs its first statements (taking its locks), the test does what it races with, then
`commit` ends it."""

from __future__ import annotations

import typing

import psycopg


class OpenTransaction:
    """Subclasses write `begin`, the statements the transaction runs before it is held open."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.conn: typing.Optional[psycopg.AsyncConnection] = None

    async def begin(self, conn: psycopg.AsyncConnection) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> typing.Self:
        self.conn = await psycopg.AsyncConnection.connect(self.url)  # not autocommit: it stays open
        await self.begin(self.conn)
        return self

    async def commit(self) -> None:
        assert self.conn is not None
        await self.conn.commit()

    async def __aexit__(self, *exc: object) -> None:
        assert self.conn is not None
        await self.conn.close()
