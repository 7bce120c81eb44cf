"""Handlers with every kind of input annotation, for input validated at the door (issue 15)."""

from __future__ import annotations

import dataclasses
import typing

import pydantic

import restate_pg as restate
from restate_pg import Context
from restate_pg.api.serde import BytesSerde
from tests.apps.awakeables import hold

typed = restate.Service("Typed")


class Order(pydantic.BaseModel):
    item: str
    quantity: int


@dataclasses.dataclass
class Point:
    x: int
    y: int


@typed.handler()
async def order(ctx: Context, order: Order) -> int:
    return order.quantity


@typed.handler()
async def point(ctx: Context, point: Point) -> int:
    return point.x + point.y


@typed.handler()
async def number(ctx: Context, value: int) -> int:
    return value + 1


@typed.handler()
async def text(ctx: Context, value: str) -> str:
    return value.upper()


@typed.handler()
async def numbers(ctx: Context, values: typing.List[int]) -> int:
    return sum(values)


@typed.handler()
async def maybe(ctx: Context, value: typing.Optional[int]) -> int:
    return -1 if value is None else value


@typed.handler()
async def anything(ctx, value):  # no annotation: any JSON is its business
    return value


@typed.handler(accept="*/*", content_type="application/octet-stream", input_serde=BytesSerde(), output_serde=BytesSerde())
async def raw(ctx: Context, value: bytes) -> bytes:
    return value


@typed.handler(output_serde=BytesSerde())
async def wait_raw(ctx: Context, key: str) -> bytes:
    """Waits on an awakeable that takes raw bytes; hands its id to the awakeables app's Holder."""
    awakeable_id, value = ctx.awakeable(serde=BytesSerde())
    ctx.object_send(hold, key=key, arg=awakeable_id)
    return await value


app = restate.app([typed])
