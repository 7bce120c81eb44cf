"""restate-sdk's `restate.entry_codec`."""

from restate_pg.api.entry_codec import JournalValueCodec, JournalValueCodecProvider

__all__ = ["JournalValueCodec", "JournalValueCodecProvider"]
