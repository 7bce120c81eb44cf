"""restate_pg.ext.langchain: a LangChain agent's model responses are journaled steps ("LLM
call") and its tool calls run in the model's order. Replays, after a suspension or a failed
attempt, take the recorded answers: each scripted model (langchain_core's GenericFakeChatModel,
no network) plays its script once in all, and would fail the handler if asked once more."""

from __future__ import annotations

import typing

import pytest

from restate_pg.testing import HarnessEnvironment
from tests.support.agents import SLEEP, Deferred, Step, always_replaying, run, steps

#: Importing the agent libraries takes a test worker seconds: the full suite's, not the quick run's.
pytestmark = pytest.mark.slow

langchain_agents = Deferred("tests.apps.langchain_agents")  # imported by the first test that uses it

LLM = run("LLM call")


@pytest.fixture(scope="module")
async def env(database_url: str) -> typing.AsyncIterator[HarnessEnvironment]:
    async with always_replaying(langchain_agents.app, database_url, "langchain") as harness:
        yield harness


class Asked(typing.NamedTuple):
    conversation: typing.List[str]
    ran: typing.Tuple[int, ...]  # (model calls, forecasts, handler executions)
    steps: typing.List[Step]


async def ask(env: HarnessEnvironment, handler: typing.Any) -> Asked:
    names = ("langchain model", "forecast", handler.__name__)
    before = [langchain_agents.CALLS.get(name, 0) for name in names]
    handle = await env.client.service_send(handler, "What is the weather?")
    conversation = await env.client.attach_invocation(handle.invocation_id)
    ran = tuple(langchain_agents.CALLS.get(name, 0) - b for name, b in zip(names, before))
    return Asked(conversation, ran, await steps(env, handle.invocation_id))


@pytest.mark.slow
async def test_a_langchain_agent_replays_its_recorded_model_call_after_a_suspension(env: HarnessEnvironment) -> None:
    asked = await ask(env, langchain_agents.ask)
    assert asked.conversation == ["human: What is the weather?", "ai: lookup(Paris)", "tool: sunny in Paris", "ai: Done."]
    # the handler ran twice (the second time after the suspension in the tool), the model twice in
    # all, the forecast once: the second execution took the first model answer from the journal
    assert asked.ran == (2, 1, 2)
    assert asked.steps == [LLM, run("forecast Paris"), SLEEP, LLM]


async def test_the_tool_calls_of_one_answer_run_one_at_a_time_in_its_order(env: HarnessEnvironment) -> None:
    asked = await ask(env, langchain_agents.ask_two)
    assert asked.conversation == ["human: What is the weather?", "ai: lookup(Oslo), lookup(Lima)",
                                  "tool: sunny in Oslo", "tool: sunny in Lima", "ai: Done."]
    # LangGraph runs both calls at once: Lima's waits until Oslo's (which suspends once) is done
    assert asked.ran == (2, 2, 3)
    assert asked.steps == [LLM, run("forecast Oslo"), SLEEP, run("forecast Lima"), SLEEP, LLM]


async def test_a_failed_attempt_is_retried_with_the_recorded_model_answer(env: HarnessEnvironment) -> None:
    asked = await ask(env, langchain_agents.ask_flaky)
    assert asked.conversation == ["human: What is the weather?", "ai: lookup(Atlantis)", "tool: sunny in Atlantis",
                                  "ai: Done."]
    # three executions (suspended, failed after the tool's sleep, done), the model twice in all
    assert asked.ran == (2, 1, 3)
    assert asked.steps == [LLM, run("forecast Atlantis"), SLEEP, LLM]
