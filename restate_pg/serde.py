"""restate-sdk's `restate.serde`, so that `restate.serde.BytesSerde` keeps working."""

from restate_pg.api.serde import (
    BytesSerde,
    DefaultSerde,
    JsonSerde,
    Msgspec,
    MsgspecJsonSerde,
    PydanticJsonSerde,
    Serde,
    is_pydantic,
)

__all__ = [
    "Serde", "BytesSerde", "JsonSerde", "DefaultSerde", "PydanticJsonSerde", "MsgspecJsonSerde", "Msgspec",
    "is_pydantic",
]
