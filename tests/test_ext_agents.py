"""restate_pg.ext.pydantic and restate_pg.ext.openai: an agent's model calls and tool calls are
journaled steps, and after a suspension the replay takes the recorded model answer instead of
calling the model again (the libraries' own test models: no network). ext.adk and ext.langchain:
tests/test_ext_adk.py, tests/test_ext_langchain.py."""

from __future__ import annotations

import typing

import pytest

from restate_pg.testing import HarnessEnvironment
from tests.support.agents import SLEEP, Deferred, always_replaying, run, steps

#: Importing the agent libraries takes a test worker seconds: the full suite's, not the quick run's.
pytestmark = pytest.mark.slow

agents = Deferred("tests.apps.agents")  # imported by the first test that uses it


@pytest.fixture(scope="module")
async def env(database_url: str) -> typing.AsyncIterator[HarnessEnvironment]:
    """Every await suspends (always_replay), so each step after the first runs on a replay."""
    async with always_replaying(agents.app, database_url, "agents") as harness:
        yield harness


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


MODEL_CALL, FORECAST = run("Model call"), run("forecast")


@pytest.mark.slow
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
    llm = run("call LLM")
    assert asked.steps == [llm, FORECAST, SLEEP, llm]


def test_each_integration_without_its_library_says_how_to_install_it() -> None:
    """Importing an integration whose library is missing fails with the extra to install, not a
    bare ModuleNotFoundError from deep inside (the libraries are blocked in a fresh interpreter)."""
    import subprocess
    import sys

    probe = """
import importlib, sys
blocked = {"adk": "google.adk", "langchain": "langchain.agents", "pydantic": "pydantic_ai.agent.wrapper", "openai": "agents"}
for module, library in blocked.items():
    sys.modules[library] = None
    try:
        importlib.import_module("restate_pg.ext." + module)
    except ImportError as exc:
        print(module, "|", exc)
"""
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True)
    said = dict(line.split(" | ") for line in done.stdout.strip().splitlines())
    assert said == {
        "adk": "restate_pg.ext.adk integrates google-adk, which is not installed: pip install 'restate-pg[agents]' "
               "(or google-adk itself)",
        "langchain": "restate_pg.ext.langchain integrates langchain, which is not installed: pip install "
                     "'restate-pg[agents]' (or langchain itself)",
        "pydantic": "restate_pg.ext.pydantic integrates pydantic-ai, which is not installed: pip install "
                    "'restate-pg[agents]' (or pydantic-ai itself)",
        "openai": "restate_pg.ext.openai integrates openai-agents, which is not installed: pip install "
                  "'restate-pg[agents]' (or openai-agents itself)",
    }
