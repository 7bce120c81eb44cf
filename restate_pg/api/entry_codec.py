"""`JournalValueCodec`: restate-sdk's hook to transform every journaled value (to encrypt or
compress what is persisted), between the serde and the journal.

The names exist so that code declaring a codec imports; restate-pg does not apply codecs yet, and
`restate_pg.app(..., journal_value_codec=...)` says so rather than store values unencoded.
"""

from __future__ import annotations

import abc
import typing


class JournalValueCodec(abc.ABC):
    """Encodes values after serialization and decodes them before deserialization."""

    @abc.abstractmethod
    def encode(self, buf: bytes) -> bytes:
        """The stored form of `buf` (which may be empty)."""

    @abc.abstractmethod
    async def decode(self, buf: bytes) -> bytes:
        """The serialized value of a stored `buf`."""


#: Builds the codec once, asynchronously (to load a key, say); restate-sdk's provider type.
JournalValueCodecProvider = typing.Callable[[], typing.Awaitable[JournalValueCodec]]
