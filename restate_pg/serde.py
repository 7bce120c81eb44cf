"""restate-sdk's `restate.serde`, so that `restate.serde.BytesSerde` keeps working."""

from restate_pg.api.serde import BytesSerde, DefaultSerde, JsonSerde, PydanticJsonSerde, Serde

__all__ = ["Serde", "BytesSerde", "JsonSerde", "DefaultSerde", "PydanticJsonSerde"]
