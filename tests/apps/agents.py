"""Durable agents (tests/test_ext_agents.py): a pydantic-ai agent and an openai-agents agent, each
with a scripted model (the libraries' own test models: no network) that first asks for the tool
`lookup`, then answers with what it returned. `lookup` journals a step of its own and sleeps, so
that in always-replay mode the invocation suspends between the two model calls, and the second
attempt replays the first model call from the journal. Every real call is counted.
"""

from __future__ import annotations

import typing
from datetime import timedelta

from agents import Agent, Model, ModelResponse, Usage, set_tracing_disabled
from openai.types.responses import ResponseFunctionToolCall, ResponseOutputMessage, ResponseOutputText
from pydantic_ai import Agent as PydanticAgent, Tool
from pydantic_ai.messages import ModelMessage, ModelResponse as PydanticResponse, TextPart, ToolCallPart, ToolReturnPart
from pydantic_ai.models.function import AgentInfo, FunctionModel

import restate_pg as restate
from restate_pg import Context
from restate_pg.ext import openai as restate_openai
from restate_pg.ext import pydantic as restate_pydantic

#: Long enough to be still ahead when the handler awaits it, so that the attempt suspends.
PAUSE = timedelta(milliseconds=100)

#: Real calls, by what was called ("pydantic model", "openai model", "forecast", ...).
CALLS: typing.Dict[str, int] = {}


def count(what: str) -> None:
    CALLS[what] = CALLS.get(what, 0) + 1


def forecast(city: str) -> str:
    count("forecast")
    return f"sunny in {city}"


# -- pydantic-ai ----------------------------------------------------------------------------------------

def scripted(messages: typing.List[ModelMessage], info: AgentInfo) -> PydanticResponse:
    """Ask for the weather of the city in the prompt, then repeat what the tool said."""
    count("pydantic model")
    returned = [part for message in messages for part in message.parts if isinstance(part, ToolReturnPart)]
    if returned:
        return PydanticResponse(parts=[TextPart(f"The tool says: {returned[-1].content}")])
    city = str(messages[-1].parts[-1].content).rsplit(" ", 1)[-1]  # type: ignore[union-attr]
    return PydanticResponse(parts=[ToolCallPart("lookup", {"city": city}, tool_call_id="call-1")])


weather = PydanticAgent(FunctionModel(scripted), name="weather")


@weather.tool_plain
async def lookup(city: str) -> str:
    """The weather of a city."""
    ctx = restate_pydantic.restate_context()
    found = await ctx.run_typed("forecast", forecast, city=city)
    await ctx.sleep(PAUSE)  # a suspension, between the two model calls
    return found


durable_weather = restate_pydantic.RestateAgent(weather)

clerk = PydanticAgent(FunctionModel(scripted), name="clerk", tools=[Tool(forecast, name="lookup")])
wrapped_clerk = restate_pydantic.RestateAgent(clerk, auto_wrap_tools=True)

pydantic_agents = restate.Service("PydanticAgents")


@pydantic_agents.handler()
async def ask(ctx: Context, city: str) -> str:
    count("ask")
    result = await durable_weather.run(f"What is the weather in {city}")
    return result.output


@pydantic_agents.handler()
async def ask_clerk(ctx: Context, city: str) -> str:
    """Tools wrapped by the agent (`auto_wrap_tools`): each call a step of its own."""
    count("ask_clerk")
    result = await wrapped_clerk.run(f"What is the weather in {city}")
    await ctx.sleep(PAUSE)  # a suspension after the run: all of it replays
    return result.output


# -- openai-agents --------------------------------------------------------------------------------------

class ScriptedModel(Model):
    """A fake model of the agents SDK: a tool call first, then the tool's output as the answer."""

    async def get_response(self, system_instructions: typing.Any, input: typing.Any, *args: typing.Any,
                           **kwargs: typing.Any) -> ModelResponse:
        count("openai model")
        items = [input] if isinstance(input, str) else list(input)
        outputs = [item for item in items if isinstance(item, dict) and item.get("type") == "function_call_output"]
        if outputs:
            text = ResponseOutputText(type="output_text", text=f"The tool says: {outputs[-1]['output']}", annotations=[])
            message = ResponseOutputMessage(id="msg-1", type="message", role="assistant", status="completed", content=[text])
            return ModelResponse(output=[message], usage=Usage(), response_id=None)
        prompt = items[0] if isinstance(items[0], str) else items[0]["content"]
        call = ResponseFunctionToolCall(type="function_call", call_id="call-1", name="lookup",
                                        arguments='{"city": "%s"}' % prompt.rsplit(" ", 1)[-1])
        return ModelResponse(output=[call], usage=Usage(), response_id=None)

    def stream_response(self, *args: typing.Any, **kwargs: typing.Any) -> typing.Any:
        raise NotImplementedError


@restate_openai.durable_function_tool(name_override="lookup")
async def openai_lookup(city: str) -> str:
    """The weather of a city."""
    ctx = restate_openai.restate_context()
    found = await ctx.run_typed("forecast", forecast, city=city)
    await ctx.sleep(PAUSE)
    return found


set_tracing_disabled(True)  # the agents SDK would export its traces to OpenAI
openai_weather = Agent(name="weather", instructions="Answer with the tool.", model=ScriptedModel(), tools=[openai_lookup])

openai_agents = restate.Service("OpenAIAgents")


@openai_agents.handler()
async def ask_openai(ctx: Context, city: str) -> str:
    count("ask_openai")
    result = await restate_openai.DurableRunner.run(openai_weather, f"What is the weather in {city}")
    return str(result.final_output)


app = restate.app([pydantic_agents, openai_agents])
