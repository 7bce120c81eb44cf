"""Durable Google ADK agents (tests/test_ext_adk.py), with scripted models: `BaseLlm` subclasses
answering with canned `LlmResponse`s (no network). The weather model first asks for the tool
`lookup` (for each city in the prompt, all in one answer), then answers with what the tools
returned (`lookup`: a journaled forecast, then a sleep: in always-replay mode the invocation
suspends between the two model calls); to an agent without `lookup` (a triage agent) it answers
with a transfer to the one that has it. Every real call is counted.
"""

from __future__ import annotations

import typing
import warnings

from google.adk import Runner
from google.adk.agents import LlmAgent
from google.adk.apps import App
from google.adk.apps.base_events_summarizer import BaseEventsSummarizer
from google.adk.events.event import Event
from google.adk.models.base_llm import BaseLlm
from google.adk.models.llm_request import LlmRequest
from google.adk.models.llm_response import LlmResponse
from google.adk.sessions import InMemorySessionService, Session
from google.genai import types

import restate_pg as restate
from restate_pg import ObjectContext, ObjectSharedContext
from restate_pg.ext.adk import RestateEventSummarizer, RestatePlugin, RestateSessionService, restate_context
from tests.support.agents import PAUSE, QUICK_RETRY, Calls, lookup_weather

CALLS = Calls()


def _text(content: types.Content) -> str:
    return " ".join(part.text for part in content.parts or [] if part.text)


class ScriptedWeatherModel(BaseLlm):
    """Asks for `lookup` once per city named after "weather in" (function calls without ids:
    ADK's plugin must give them ids that survive a replay), then repeats the tools' answers."""

    model: str = "scripted-weather"

    async def generate_content_async(self, llm_request: LlmRequest,
                                     stream: bool = False) -> typing.AsyncGenerator[LlmResponse, None]:
        CALLS.count("adk model")
        last = llm_request.contents[-1]
        returned = [part.function_response for part in last.parts or [] if part.function_response]
        if "lookup" not in llm_request.tools_dict:  # the triage agent: hand over to the forecaster
            call = types.FunctionCall(name="transfer_to_agent", args={"agent_name": "forecaster"})
            yield LlmResponse(content=types.Content(role="model", parts=[types.Part(function_call=call)]))
        elif returned:
            said = "; ".join(str((r.response or {}).get("result")) for r in returned)
            yield LlmResponse(content=types.Content(role="model", parts=[types.Part(text=f"The tools say: {said}")]))
        else:
            question = next(_text(c) for c in reversed(llm_request.contents) if "weather in " in _text(c))
            cities = question.rsplit("weather in ", 1)[-1].split(" and ")
            calls = [types.Part(function_call=types.FunctionCall(name="lookup", args={"city": city})) for city in cities]
            yield LlmResponse(content=types.Content(role="model", parts=calls))


async def lookup(city: str) -> str:
    """The weather of a city."""
    return await lookup_weather(CALLS, restate_context(), city)


weather = LlmAgent(name="weather", model=ScriptedWeatherModel(), instruction="Answer with the tool.", tools=[lookup])
runner = Runner(app=App(name="weather", root_agent=weather, plugins=[RestatePlugin()]),
                session_service=RestateSessionService())

#: A triage agent that transfers to a forecaster without a model of its own (it uses its parent's).
forecaster = LlmAgent(name="forecaster", description="Knows the weather.", instruction="Answer with the tool.",
                      tools=[lookup])
triage = LlmAgent(name="triage", model=ScriptedWeatherModel(), instruction="Transfer weather questions.",
                  sub_agents=[forecaster])
triage_app = App(name="triage", root_agent=triage, plugins=[RestatePlugin()])
SESSION = "chat"

agents = restate.VirtualObject("AdkAgents")


@agents.handler(invocation_retry_policy=QUICK_RETRY)
async def ask(ctx: ObjectContext, question: str) -> str:
    """One turn of the conversation of the object's key, whose session is in the object's state."""
    CALLS.count("ask")
    service = typing.cast(RestateSessionService, runner.session_service)
    if not await service.has_session(session_id=SESSION):
        await service.create_session(app_name="weather", user_id=ctx.key(), session_id=SESSION)
    answer = ""
    message = types.Content(role="user", parts=[types.Part(text=question)])
    async for event in runner.run_async(user_id=ctx.key(), session_id=SESSION, new_message=message):
        if event.is_final_response() and event.content:
            answer = _text(event.content)
    return answer


@agents.handler(kind="shared")
async def conversation(ctx: ObjectSharedContext) -> typing.List[str]:
    """What the stored session holds: each event's author and text, or its function call or answer."""
    session = await ctx.get(f"session_store::{SESSION}", type_hint=Session)
    said = []
    for event in session.events if session else []:
        for part in event.content.parts or [] if event.content else []:
            if part.function_call:
                said.append(f"{event.author}: call {part.function_call.name}({part.function_call.args['city']})")
            elif part.function_response:
                said.append(f"{event.author}: {(part.function_response.response or {}).get('result')}")
            elif part.text:
                said.append(f"{event.author}: {part.text}")
    return said


@agents.handler()
async def triaged(ctx: ObjectContext, question: str) -> typing.List[str]:
    """A run that transfers to a sub-agent (the session in memory: only the model calls are
    journaled): who said what."""
    triage_runner = Runner(app=triage_app, session_service=InMemorySessionService())  # a new one per execution
    await triage_runner.session_service.create_session(app_name="triage", user_id=ctx.key(), session_id="t")
    message = types.Content(role="user", parts=[types.Part(text=question)])
    events = triage_runner.run_async(user_id=ctx.key(), session_id="t", new_message=message)
    return [f"{event.author}: {_text(event.content) or 'call'}" async for event in events if event.content]


class CountingSummarizer(BaseEventsSummarizer):
    """A compaction summary without a model: how many events there were, and whose."""

    async def maybe_summarize_events(self, *, events: typing.List[Event]) -> typing.Optional[Event]:
        CALLS.count("summarizer")
        authors = sorted({event.author for event in events})
        summary = types.Part(text=f"{len(events)} events by {', '.join(authors)}")
        return Event(author="summarizer", content=types.Content(role="model", parts=[summary]))


with warnings.catch_warnings():  # ADK warns that its summarizers are experimental, on every construction
    warnings.simplefilter("ignore", UserWarning)
    summarizer = RestateEventSummarizer.from_summarizer(CountingSummarizer(), max_retries=3)


@agents.handler()
async def summarize(ctx: ObjectContext, texts: typing.List[str]) -> typing.Optional[str]:
    """The summary of events saying `texts` (none for no events), used after a suspension."""
    CALLS.count("summarize")
    events = [Event(author=f"user{i % 2}", content=types.Content(role="user", parts=[types.Part(text=text)]))
              for i, text in enumerate(texts)]
    summary = await summarizer.maybe_summarize_events(events=events)
    await ctx.sleep(PAUSE)
    if summary is None:
        return None
    return f"{summary.author}: {_text(summary.content)}"  # type: ignore[arg-type]  (an Event again, replayed)


app = restate.app([agents])
