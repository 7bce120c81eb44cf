"""Serialisers for inputs, outputs, state values and journaled results (restate-sdk's `restate.serde`).

JSON is the default; a type hint that names a pydantic model or a dataclass (also inside
`Optional[...]` or `list[...]`) turns values back into those types. Empty bytes stand for `None`,
as in restate-sdk, so a handler returning `None` answers with an empty body.
"""

from __future__ import annotations

import abc
import dataclasses
import json
import typing
from functools import lru_cache

import orjson

T = typing.TypeVar("T")
I = typing.TypeVar("I")  # noqa: E741


class Serde(typing.Generic[T], abc.ABC):
    """Turns a value into bytes and back."""

    @abc.abstractmethod
    def deserialize(self, buf: bytes) -> typing.Optional[T]: ...

    @abc.abstractmethod
    def serialize(self, obj: typing.Optional[T]) -> bytes: ...


class BytesSerde(Serde[bytes]):
    """Raw bytes, passed through unchanged."""

    def deserialize(self, buf: bytes) -> typing.Optional[bytes]:
        return bytes(buf)

    def serialize(self, obj: typing.Optional[bytes]) -> bytes:
        return b"" if obj is None else bytes(obj)


def _default(obj: typing.Any) -> typing.Any:
    if _is_pydantic_model(type(obj)):
        return obj.model_dump(mode="json")
    if Msgspec.is_struct(type(obj)):
        return Msgspec.to_builtins(obj)
    if isinstance(obj, (set, frozenset)):
        return list(obj)
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


def json_dumps(obj: typing.Any) -> bytes:
    """JSON-encode with orjson, falling back to the stdlib for what orjson refuses (huge ints)."""
    try:
        return orjson.dumps(obj, default=_default, option=orjson.OPT_NON_STR_KEYS)
    except TypeError:
        return json.dumps(obj, default=_default).encode()


def json_loads(buf: bytes) -> typing.Any:
    try:
        return orjson.loads(buf)
    except orjson.JSONDecodeError:
        # The stdlib accepts a few things orjson does not (NaN, Infinity); let it decide.
        return json.loads(buf)


class JsonSerde(Serde[I]):
    """Plain JSON; empty bytes are `None`."""

    def deserialize(self, buf: bytes) -> typing.Optional[I]:
        if not buf:
            return None
        return json_loads(buf)

    def serialize(self, obj: typing.Optional[I]) -> bytes:
        if obj is None:
            return b""
        return json_dumps(obj)


class PydanticJsonSerde(Serde[I]):
    """JSON validated into (and dumped from) a pydantic model."""

    def __init__(self, model: typing.Type[I]) -> None:
        self.model = model

    def deserialize(self, buf: bytes) -> typing.Optional[I]:
        if not buf:
            return None
        return self.model.model_validate_json(buf)  # type: ignore[attr-defined]

    def serialize(self, obj: typing.Optional[I]) -> bytes:
        if obj is None:
            return b""
        return obj.model_dump_json().encode()  # type: ignore[attr-defined]


class DefaultSerde(Serde[I]):
    """JSON, reconstructing pydantic models and dataclasses named by the type hint."""

    def __init__(self, type_hint: typing.Optional[typing.Type[I]] = None) -> None:
        self.type_hint = type_hint

    def with_maybe_type(self, type_hint: typing.Optional[typing.Type[I]] = None) -> "DefaultSerde[I]":
        return DefaultSerde(type_hint) if type_hint is not None else self

    def deserialize(self, buf: bytes) -> typing.Optional[I]:
        if not buf:
            return None
        hint = self.type_hint
        if hint is not None and Msgspec.is_struct(hint):
            return typing.cast(I, Msgspec.decode(buf, hint))
        if hint is not None and _needs_validation(hint):
            return _adapter(hint).validate_json(buf)
        return json_loads(buf)

    def serialize(self, obj: typing.Optional[I]) -> bytes:
        if obj is None:
            return b""
        return json_dumps(obj)


class Msgspec:
    """msgspec, when installed (restate-sdk's optional `serde` extra): its structs are rebuilt
    from a type hint as pydantic models are."""

    @staticmethod
    def _module() -> typing.Any:
        try:
            import msgspec
        except ImportError:
            return None
        return msgspec

    @classmethod
    def is_struct(cls, tp: typing.Any) -> bool:
        msgspec = cls._module() if isinstance(tp, type) else None
        return msgspec is not None and issubclass(tp, msgspec.Struct)

    @classmethod
    def decode(cls, buf: bytes, type: typing.Any) -> typing.Any:  # noqa: A002 - restate-sdk's name
        return cls._module().json.decode(buf, type=type)

    @classmethod
    def encode(cls, obj: typing.Any) -> bytes:
        return typing.cast(bytes, cls._module().json.encode(obj))

    @classmethod
    def to_builtins(cls, obj: typing.Any) -> typing.Any:
        return cls._module().to_builtins(obj)


class MsgspecJsonSerde(Serde[I]):
    """A msgspec struct to and from JSON (needs msgspec installed)."""

    def __init__(self, model: typing.Type[I]) -> None:
        self.model = model

    def deserialize(self, buf: bytes) -> typing.Optional[I]:
        return None if not buf else typing.cast(I, Msgspec.decode(buf, self.model))

    def serialize(self, obj: typing.Optional[I]) -> bytes:
        return b"" if obj is None else Msgspec.encode(obj)


def is_pydantic(annotation: typing.Any) -> bool:
    """Whether `annotation` is a pydantic model class (restate-sdk's name)."""
    return _is_pydantic_model(annotation)


def _is_pydantic_model(tp: typing.Any) -> bool:
    try:
        from pydantic import BaseModel
    except ImportError:  # pragma: no cover - pydantic is a dependency
        return False
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def _needs_validation(hint: typing.Any) -> bool:
    """True when plain JSON would lose the type: a model or dataclass somewhere in the hint."""
    if _is_pydantic_model(hint) or (isinstance(hint, type) and dataclasses.is_dataclass(hint)):
        return True
    return any(_needs_validation(arg) for arg in typing.get_args(hint))


@lru_cache(maxsize=256)
def _adapter(hint: typing.Any) -> typing.Any:
    from pydantic import TypeAdapter

    return TypeAdapter(hint)


def is_json_serde(serde: Serde[typing.Any]) -> bool:
    """Whether `serde` writes JSON (restate-sdk's default and pydantic serdes); a user's own serde
    may write anything."""
    return isinstance(serde, (DefaultSerde, JsonSerde, PydanticJsonSerde, MsgspecJsonSerde))


def serde_for_type(hint: typing.Any, default: Serde[typing.Any]) -> Serde[typing.Any]:
    """The serde restate-sdk would pick for a handler parameter or return annotation."""
    if not isinstance(default, DefaultSerde):
        return default
    if hint is None or hint is typing.Any:
        return default
    if _is_pydantic_model(hint):
        return PydanticJsonSerde(hint)
    return DefaultSerde(hint)


__all__ = [
    "Serde",
    "BytesSerde",
    "JsonSerde",
    "DefaultSerde",
    "PydanticJsonSerde",
    "MsgspecJsonSerde",
    "Msgspec",
    "is_pydantic",
    "serde_for_type",
    "is_json_serde",
]
