"""Durable LangChain agents (tests/test_ext_langchain.py), with langchain_core's own fake chat
model (no network) playing a script: first the tool calls, then the answer. A script is played
once in all: a model asked more often than its script says fails the handler. `lookup` journals a
forecast and sleeps, so that in always-replay mode the invocation suspends between the two model
calls. Every real call is counted.
"""

from __future__ import annotations

import typing

from langchain.agents import create_agent
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.tools import tool

import restate_pg as restate
from restate_pg import Context
from restate_pg.ext.langchain import RestateMiddleware, restate_context
from tests.support.agents import QUICK_RETRY, Calls, lookup_weather

CALLS = Calls()


class ScriptedChatModel(GenericFakeChatModel):
    """langchain_core's GenericFakeChatModel, counted, and taking the agent's tools (it answers
    from its script whatever the tools are)."""

    def bind_tools(self, tools: typing.Any, **kwargs: typing.Any) -> ScriptedChatModel:
        return self

    async def _agenerate(self, *args: typing.Any, **kwargs: typing.Any) -> typing.Any:
        CALLS.count("langchain model")
        return await super()._agenerate(*args, **kwargs)


def scripted(*cities: str) -> ScriptedChatModel:
    """A model that asks for `lookup` of each city (all in one answer), then says it is done."""
    calls = [{"name": "lookup", "args": {"city": city}, "id": f"call-{city}"} for city in cities]
    return ScriptedChatModel(messages=iter([AIMessage(content="", tool_calls=calls), AIMessage(content="Done.")]))


@tool
async def lookup(city: str) -> str:
    """The weather of a city."""
    return await lookup_weather(CALLS, restate_context(), city)


def agent(*cities: str) -> typing.Any:
    return create_agent(scripted(*cities), tools=[lookup], middleware=[RestateMiddleware()])


#: One agent per handler, each with its script (a handler is invoked once per test run).
AGENTS = {"ask": agent("Paris"), "ask_two": agent("Oslo", "Lima"), "ask_flaky": agent("Atlantis")}

service = restate.Service("LangchainAgents")


async def _run(handler: str, question: str) -> typing.List[str]:
    CALLS.count(handler)
    result = await AGENTS[handler].ainvoke({"messages": [HumanMessage(question)]})
    return [_said(message) for message in result["messages"]]


def _said(message: BaseMessage) -> str:
    calls = getattr(message, "tool_calls", None)
    if calls:
        return f"{message.type}: " + ", ".join(f"{call['name']}({call['args']['city']})" for call in calls)
    return f"{message.type}: {message.content}"


@service.handler()
async def ask(ctx: Context, question: str) -> typing.List[str]:
    return await _run("ask", question)


@service.handler()
async def ask_two(ctx: Context, question: str) -> typing.List[str]:
    """Two tool calls in one answer: they run one at a time, in the answer's order."""
    return await _run("ask_two", question)


@service.handler(invocation_retry_policy=QUICK_RETRY)
async def ask_flaky(ctx: Context, question: str) -> typing.List[str]:
    """A tool that fails the first attempt after its step: the retry replays the model's answer."""
    return await _run("ask_flaky", question)


app = restate.app([service])
