"""restate_pg.ext.adk: a Google ADK agent's model calls are journaled steps ("call LLM"), its tool
calls run in the model's order, and its session lives in the virtual object's state. Replays,
after a suspension or a failed attempt, take the recorded model answers: the scripted model
(a `BaseLlm` with canned answers, no network) is asked once per step in all."""

from __future__ import annotations

import typing

import pytest

from restate_pg.testing import HarnessEnvironment
from tests.support.agents import SLEEP, Deferred, Step, always_replaying, run, steps

#: Importing the agent libraries takes a test worker seconds: the full suite's, not the quick run's.
pytestmark = pytest.mark.slow

adk_agents = Deferred("tests.apps.adk_agents")  # imported by the first test that uses it

LLM, STORE = run("call LLM"), run("store session")


@pytest.fixture(scope="module")
async def env(database_url: str) -> typing.AsyncIterator[HarnessEnvironment]:
    async with always_replaying(adk_agents.app, database_url, "adk") as harness:
        yield harness


class Asked(typing.NamedTuple):
    answer: str
    ran: typing.Tuple[int, ...]  # (model calls, forecasts, handler executions)
    steps: typing.List[Step]


async def ask(env: HarnessEnvironment, key: str, question: str) -> Asked:
    """One turn of `key`'s conversation: the answer, how many times the model, the forecast and
    the handler really ran meanwhile, and the invocation's steps."""
    names = ("adk model", "forecast", "ask")
    before = [adk_agents.CALLS.get(name, 0) for name in names]
    handle = await env.client.object_send(adk_agents.ask, key, question)
    answer = await env.client.attach_invocation(handle.invocation_id)
    ran = tuple(adk_agents.CALLS.get(name, 0) - b for name, b in zip(names, before))
    return Asked(answer, ran, await steps(env, handle.invocation_id))


@pytest.mark.slow
async def test_an_adk_agent_replays_its_recorded_model_call_after_a_suspension(env: HarnessEnvironment) -> None:
    asked = await ask(env, "paris", "What is the weather in Paris")
    assert asked.answer == "The tools say: sunny in Paris"
    # the handler ran twice (the second time after the suspension in the tool), the model twice in
    # all, the forecast once: the second execution took the first model answer from the journal
    assert asked.ran == (2, 1, 2)
    # the new session stored, the model's answer, the tool's step, its sleep, the model's last
    # answer, and the session stored again as the run ends
    assert asked.steps == [STORE, LLM, run("forecast Paris"), SLEEP, LLM, STORE]


async def test_the_tool_calls_of_one_answer_run_one_at_a_time_in_its_order(env: HarnessEnvironment) -> None:
    asked = await ask(env, "two", "What is the weather in Oslo and Lima")
    assert asked.answer == "The tools say: sunny in Oslo; sunny in Lima"
    # ADK runs both calls at once: Lima's waits until Oslo's (which suspends once) is done
    assert asked.ran == (2, 2, 3)
    assert asked.steps == [STORE, LLM, run("forecast Oslo"), SLEEP, run("forecast Lima"), SLEEP, LLM, STORE]


async def test_a_failed_attempt_is_retried_with_the_recorded_model_answer(env: HarnessEnvironment) -> None:
    asked = await ask(env, "flaky", "What is the weather in Atlantis")
    assert asked.answer == "The tools say: sunny in Atlantis"
    # three executions (suspended, failed after the tool's sleep, done), the model twice in all
    assert asked.ran == (2, 1, 3)
    assert asked.steps == [STORE, LLM, run("forecast Atlantis"), SLEEP, LLM, STORE]


async def test_the_session_is_kept_in_the_objects_state_across_turns(env: HarnessEnvironment) -> None:
    await ask(env, "chat", "What is the weather in Rome")
    second = await ask(env, "chat", "What is the weather in Bern")
    assert second.answer == "The tools say: sunny in Bern"
    assert second.steps == [LLM, run("forecast Bern"), SLEEP, LLM, STORE]  # the session exists: not created again
    conversation = await env.client.object_call(adk_agents.conversation, "chat")
    assert conversation == [
        "user: What is the weather in Rome", "weather: call lookup(Rome)", "weather: sunny in Rome",
        "weather: The tools say: sunny in Rome",
        "user: What is the weather in Bern", "weather: call lookup(Bern)", "weather: sunny in Bern",
        "weather: The tools say: sunny in Bern",
    ]
    assert await env.client.object_call(adk_agents.conversation, "nobody") == []


async def test_a_sub_agent_without_a_model_uses_its_parents_after_a_transfer(env: HarnessEnvironment) -> None:
    before = adk_agents.CALLS.get("adk model", 0)
    handle = await env.client.object_send(adk_agents.triaged, "triage", "What is the weather in Quito")
    said = await env.client.attach_invocation(handle.invocation_id)
    assert said == ["triage: call", "triage: call", "forecaster: call", "forecaster: call",
                    "forecaster: The tools say: sunny in Quito"]
    # the triage's answer (a transfer), then the forecaster's two, each asked once
    assert adk_agents.CALLS["adk model"] - before == 3
    assert await steps(env, handle.invocation_id) == [LLM, LLM, run("forecast Quito"), SLEEP, LLM]


async def test_the_compaction_summary_is_a_step_replayed_as_an_event(env: HarnessEnvironment) -> None:
    before = (adk_agents.CALLS.get("summarizer", 0), adk_agents.CALLS.get("summarize", 0))
    handle = await env.client.object_send(adk_agents.summarize, "summary", ["hi", "hello", "bye"])
    assert await env.client.attach_invocation(handle.invocation_id) == "summarizer: 3 events by user0, user1"
    # two executions (the sleep suspends), the summarizer once: the replay rebuilt its Event
    assert (adk_agents.CALLS["summarizer"] - before[0], adk_agents.CALLS["summarize"] - before[1]) == (1, 2)
    assert await steps(env, handle.invocation_id) == [run("compaction LLM call"), SLEEP]
    # no events, no summary and no step
    handle = await env.client.object_send(adk_agents.summarize, "summary", [])
    assert await env.client.attach_invocation(handle.invocation_id) is None
    assert await steps(env, handle.invocation_id) == [SLEEP]
