"""What the durable-agent tests share (tests/test_ext_*.py and their apps): an always-replay
harness in a schema of its own, an invocation's journaled steps, counted calls, and the weather
tool the agents' scripted models ask for."""

from __future__ import annotations

import contextlib
import importlib
import secrets
import typing
from datetime import timedelta

import psycopg
from psycopg import sql

from restate_pg import Context, InvocationRetryPolicy
from restate_pg.store.migrate import upgrade
from restate_pg.testing import HarnessEnvironment, create_test_harness

#: Long enough to be still ahead when the handler awaits it, so that the attempt suspends.
PAUSE = timedelta(milliseconds=100)

#: A failed attempt is retried at once (the flaky tool fails the first one).
QUICK_RETRY = InvocationRetryPolicy(initial_interval=timedelta(milliseconds=10))


class Calls(typing.Dict[str, int]):
    """Real calls of one app, by what was called ("model", "forecast", a handler's name...)."""

    def count(self, what: str) -> int:
        self[what] = self.get(what, 0) + 1
        return self[what]


async def lookup_weather(calls: Calls, ctx: Context, city: str) -> str:
    """The agents' tool: a journaled forecast, then a sleep (a suspension between the model's two
    answers). For "Atlantis", the first attempt fails after both (a retryable failure)."""

    def forecast() -> str:
        calls.count("forecast")
        return f"sunny in {city}"

    found = await ctx.run_typed(f"forecast {city}", forecast)
    await ctx.sleep(PAUSE)
    if city == "Atlantis" and calls.count("Atlantis lookups") == 1:
        raise RuntimeError("the first attempt fails after the forecast (a retryable failure)")
    return found


#: A step of an invocation's journal: (entry type, name).
Step = typing.Tuple[str, typing.Optional[str]]
SLEEP: Step = ("Command: Sleep", None)


def run(name: str) -> Step:
    return ("Command: Run", name)


@contextlib.asynccontextmanager
async def always_replaying(app: typing.Any, database_url: str, prefix: str) -> typing.AsyncIterator[HarnessEnvironment]:
    """A harness for `app` in which every await suspends (always_replay), so that each step after
    the first runs on a replayed handler; its schema is dropped afterwards."""
    schema = f"{prefix}_{secrets.token_hex(4)}"
    upgrade(database_url, schema)
    try:
        async with create_test_harness(app, always_replay=True, database_url=database_url, schema=schema) as harness:
            yield harness
    finally:
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


async def steps(env: HarnessEnvironment, invocation_id: str) -> typing.List[Step]:
    """The invocation's runs and sleeps, in journal order."""
    return [(row["entry_type"], row["name"]) for row in await env.journal(invocation_id)
            if row["entry_type"] in ("Command: Run", "Command: Sleep")]


class Deferred:
    """A test app module imported at its first use rather than when pytest collects the tests:
    the agent libraries take seconds to import, and every test worker collects every module."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attribute: str) -> typing.Any:
        if attribute.startswith("_"):  # pytest's probes of a module's globals (`__test__`, fixture markers)
            raise AttributeError(attribute)
        return getattr(importlib.import_module(self._name), attribute)
