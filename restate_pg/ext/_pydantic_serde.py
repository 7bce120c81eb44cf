"""What `restate_pg.ext.pydantic` and its MCP toolsets share: the serde of journaled values, and
the handler's context as pydantic-ai code asks for it."""

from __future__ import annotations

import typing

from pydantic import TypeAdapter
from pydantic_ai.exceptions import UserError

from restate_pg.api.context import Context
from restate_pg.api.serde import Serde
from restate_pg.runtime.current import current_context

T = typing.TypeVar("T")


class PydanticTypeAdapter(Serde[T]):
    """A serde for any type pydantic can validate (models, dataclasses, unions...): JSON both ways."""

    def __init__(self, model_type: typing.Type[T]) -> None:
        self._adapter: TypeAdapter[T] = TypeAdapter(model_type)

    def deserialize(self, buf: bytes) -> typing.Optional[T]:
        return self._adapter.validate_json(bytes(buf).decode("utf-8")) if buf else None

    def serialize(self, obj: typing.Optional[T]) -> bytes:
        return b"" if obj is None else TypeAdapter(type(obj)).dump_json(obj)


def handler_context(what: str) -> Context:
    """The running handler's context; pydantic-ai's UserError outside one."""
    ctx = current_context()
    if ctx is None:
        raise UserError(f"{what} cannot be used without a Restate context. Make sure to run it within an agent "
                        "or a run context.")
    return ctx
