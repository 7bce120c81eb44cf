"""Typed runs, as restate-sdk's examples write them: the action's return annotation says what the
journaled result is rebuilt as (a pydantic model, a dataclass, a msgspec struct, a plain type)."""

from __future__ import annotations

import dataclasses
import typing
from datetime import timedelta

import msgspec
from pydantic import BaseModel

import restate_pg as restate
from restate_pg import Context, RunOptions


class SubTask(BaseModel):
    id: int
    title: str


class Plan(BaseModel):
    subtasks: typing.List[SubTask]


@dataclasses.dataclass
class Receipt:
    amount: int
    currency: str


class Quote(msgspec.Struct):
    price: float
    symbol: str


async def make_plan(count: int) -> Plan:
    return Plan(subtasks=[SubTask(id=i, title=f"task {i}") for i in range(count)])


def charge(amount: int) -> Receipt:
    return Receipt(amount, "EUR")


def quote() -> Quote:
    return Quote(9.5, "RPG")


def maybe_receipt() -> typing.Optional[Receipt]:
    return Receipt(1, "CHF")


def untyped():
    return {"kept": "a dict"}


fanout = restate.Service("TypedRuns")


@fanout.handler()
async def plan_and_execute(ctx: Context, count: int) -> typing.List[str]:
    """A typed-run fan-out: a plan of sub-tasks (a pydantic model), each run as a step of its own."""
    plan = await ctx.run_typed("plan", make_plan, count=count)
    await ctx.sleep(timedelta(milliseconds=1))  # a suspension point: the rest runs on a replay
    results = [ctx.run_typed(f"do {t.id}", lambda t=t: f"done {t.title}") for t in plan.subtasks]
    return [await r for r in results]


@fanout.handler()
async def kinds(ctx: Context) -> typing.List[str]:
    receipt = await ctx.run_typed("charge", charge, RunOptions(), 42)
    priced = await ctx.run("quote", quote)
    maybe = await ctx.run_typed("maybe", maybe_receipt)
    hinted = await ctx.run_typed("hinted", untyped, RunOptions(type_hint=dict))
    await ctx.sleep(timedelta(milliseconds=1))
    again = await ctx.run_typed("charge again", charge, RunOptions(), 7)
    return [
        f"{type(receipt).__name__} {receipt.amount} {receipt.currency}",
        f"{type(priced).__name__} {priced.price} {priced.symbol}",
        f"{type(maybe).__name__} {maybe.currency if maybe else None}",
        f"{type(hinted).__name__} {hinted['kept']}",
        f"{type(again).__name__} {again.amount}",
    ]


app = restate.app([fanout])
