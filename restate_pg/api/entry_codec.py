"""`JournalValueCodec`: restate-sdk's hook to transform every journaled value (to encrypt or
compress what is persisted), between the serde and the journal.

As in restate-sdk, a codec given to `restate_pg.app(..., journal_value_codec=...)` encodes, after
serialization, what a handler writes: its output, `ctx.run` results, state values, call and send
parameters, and the values it resolves awakeables, promises and signals with; it decodes, before
deserialization, the handler's input and every such value the handler reads back. Failures are
never encoded. The journal, state and invocation rows in PostgreSQL hold the encoded bytes.
"""

from __future__ import annotations

import abc
import asyncio
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

CodecConfig = typing.Union[JournalValueCodec, JournalValueCodecProvider, None]


class CodecSource:
    """An app's codec: given as is, or built by its provider once, on the first invocation that
    needs it (restate-sdk resolves it lazily too), then shared by every attempt."""

    def __init__(self, config: CodecConfig) -> None:
        if config is not None and not isinstance(config, JournalValueCodec) and not callable(config):
            raise TypeError(f"journal_value_codec must be a JournalValueCodec or an async provider of one, got {config!r}")
        self.config = config
        self._built: typing.Optional["asyncio.Future[JournalValueCodec]"] = None

    @property
    def configured(self) -> bool:
        return self.config is not None

    async def get(self) -> typing.Optional[JournalValueCodec]:
        config = self.config
        if config is None or isinstance(config, JournalValueCodec):
            return config
        if self._built is None or (self._built.done() and self._built.exception() is not None):
            self._built = asyncio.ensure_future(_build(config))  # a failed build is tried again
        return await asyncio.shield(self._built)


async def _build(provider: JournalValueCodecProvider) -> JournalValueCodec:
    codec = await provider()
    if not isinstance(codec, JournalValueCodec):
        raise TypeError(f"the journal_value_codec provider returned {codec!r}, not a JournalValueCodec")
    return codec


def encoded(codec: typing.Optional[JournalValueCodec], buf: bytes) -> bytes:
    """`buf` as stored: encoded when there is a codec."""
    return buf if codec is None else codec.encode(bytes(buf))


async def decoded(codec: typing.Optional[JournalValueCodec], buf: typing.Optional[bytes]) -> typing.Optional[bytes]:
    """A stored value as serialized: decoded when there is a codec (None, no value, stays None)."""
    return buf if codec is None or buf is None else await codec.decode(bytes(buf))
