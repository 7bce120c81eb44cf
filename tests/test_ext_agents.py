"""restate_pg.ext.pydantic and restate_pg.ext.openai: an agent's model calls and tool calls are
journaled steps, and after a suspension the replay takes the recorded model answer instead of
calling the model again (the libraries' own test models: no network). ext.adk and ext.langchain,
not built yet, say so."""

from __future__ import annotations

import importlib
import secrets
import typing

import psycopg
import pytest
from psycopg import sql

from restate_pg.store.migrate import upgrade
from restate_pg.testing import HarnessEnvironment, create_test_harness
from tests.apps import agents


@pytest.fixture(scope="module")
async def env(database_url: str) -> typing.AsyncIterator[HarnessEnvironment]:
    """Every await suspends (always_replay), so each step after the first runs on a replay."""
    schema = f"agents_{secrets.token_hex(4)}"
    upgrade(database_url, schema)
    try:
        async with create_test_harness(agents.app, always_replay=True, database_url=database_url, schema=schema) as harness:
            yield harness
    finally:
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


async def steps(env: HarnessEnvironment, invocation_id: str) -> typing.List[typing.Tuple[str, str]]:
    return [(row["entry_type"], row["name"]) for row in await env.journal(invocation_id)
            if row["entry_type"] in ("Command: Run", "Command: Sleep")]


async def ask(env: HarnessEnvironment, handler: typing.Any, city: str, model: str) -> Asked:
    """Invoke `handler` for `city`: its answer, how many times the model, the forecast and the
    handler itself really ran meanwhile, and the invocation's steps."""
    names = (model, "forecast", handler.__name__)
    before = [agents.CALLS.get(name, 0) for name in names]
    handle = await env.client.service_send(handler, city)
    answer = await env.client.attach_invocation(handle.invocation_id)
    ran = tuple(agents.CALLS.get(name, 0) - b for name, b in zip(names, before))
    return Asked(answer, ran, await steps(env, handle.invocation_id))


class Asked(typing.NamedTuple):
    answer: str
    ran: typing.Tuple[int, ...]  # (model calls, forecasts, handler executions)
    steps: typing.List[typing.Tuple[str, str]]


MODEL_CALL, FORECAST, SLEEP = ("Command: Run", "Model call"), ("Command: Run", "forecast"), ("Command: Sleep", None)


async def test_a_pydantic_agent_replays_its_recorded_model_call_after_a_suspension(env: HarnessEnvironment) -> None:
    asked = await ask(env, agents.ask, "Paris", "pydantic model")
    assert asked.answer == "The tool says: sunny in Paris"
    # the handler ran twice (the second time after the suspension in the tool), the model twice
    # in all, the forecast once: the second run took the first model call's answer from the journal
    assert asked.ran == (2, 1, 2)
    assert asked.steps == [MODEL_CALL, FORECAST, SLEEP, MODEL_CALL]


async def test_a_pydantic_agents_wrapped_tool_call_is_a_step(env: HarnessEnvironment) -> None:
    asked = await ask(env, agents.ask_clerk, "Oslo", "pydantic model")
    assert (asked.answer, asked.ran) == ("The tool says: sunny in Oslo", (2, 1, 2))
    assert asked.steps == [MODEL_CALL, ("Command: Run", "Calling lookup"), MODEL_CALL, SLEEP]


async def test_an_openai_agent_replays_its_recorded_model_call_after_a_suspension(env: HarnessEnvironment) -> None:
    asked = await ask(env, agents.ask_openai, "Lima", "openai model")
    assert (asked.answer, asked.ran) == ("The tool says: sunny in Lima", (2, 1, 2))
    llm = ("Command: Run", "call LLM")
    assert asked.steps == [llm, FORECAST, SLEEP, llm]


@pytest.mark.parametrize("module", ["adk", "langchain"])
def test_the_integrations_not_built_say_so(module: str) -> None:
    with pytest.raises(ImportError, match=f"restate_pg.ext.{module} .* is not provided by restate-pg yet"):
        importlib.import_module(f"restate_pg.ext.{module}")
