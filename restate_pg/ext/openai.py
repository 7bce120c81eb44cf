"""restate-sdk's `restate.ext.openai`: durable openai-agents runs.

`await DurableRunner.run(agent, input)` in a handler runs `agents.Runner.run` with each model
response journaled as a `ctx.run` step ("call LLM"): a retried or resumed handler replays the
recorded responses instead of calling the model again. The tool calls of one response take their
turns in the response's order (`ext.turnstile`), so that the steps tools journal (through
`restate_context()`) come in the same order on every replay; `durable_function_tool` makes a
tool whose `TerminalError` ends the run instead of being reported to the model.
`use_restate_session=True` keeps the conversation in the virtual object's state ("items").

Unlike restate-sdk, which journals only models its provider builds from a name, a `Model` object
set on an agent (or in `run_config.model`) is journaled too.
"""

from __future__ import annotations

import dataclasses
import typing

try:
    from agents import Agent, AgentsException, Handoff, Model, ModelBehaviorError, RunConfig, Runner, Usage
    from agents.items import ModelResponse, TResponseInputItem, TResponseOutputItem
    from agents.memory.session import SessionABC
    from agents.models.multi_provider import MultiProvider
    from agents.tool import FunctionTool, default_tool_error_function
    from agents.tool import function_tool as _function_tool
    from pydantic import BaseModel
except ImportError:  # pragma: no cover - exercised without the extra
    from restate_pg.ext._requires import missing

    missing("openai", "openai-agents", "agents")

from restate_pg.api.context import Context, ObjectContext
from restate_pg.api.errors import TerminalError
from restate_pg.api.retry import RunOptions
from restate_pg.ext._requires import context as _context
from restate_pg.ext.turnstile import Turnstile

__all__ = ["DurableRunner", "restate_object_context", "restate_context", "raise_terminal_errors",
           "propagate_cancellation", "durable_function_tool"]

Any = typing.Any


def restate_context() -> Context:
    """The running handler's context (a RuntimeError outside one): for tools' calls, timers, runs."""
    return typing.cast(Context, _context())


def restate_object_context() -> ObjectContext:
    """The running handler's context as a virtual object's (for state)."""
    return typing.cast(ObjectContext, _context())


# -- tool errors ---------------------------------------------------------------------------------------

class AgentsTerminalException(AgentsException, TerminalError):
    """A TerminalError raised by a tool, as the agents SDK (which stops on AgentsException) and
    restate-pg (which completes the invocation with it) both understand it."""

    def __init__(self, *args: object) -> None:
        super().__init__(*args)


def raise_terminal_errors(context: Any, error: Exception) -> str:
    """A tool's failure function: a TerminalError ends the run (and the invocation); a model's
    malformed call is reported to the model; anything else is raised (and retried)."""
    if isinstance(error, TerminalError):
        raise AgentsTerminalException(error.message)
    if isinstance(error, ModelBehaviorError):
        return f"An error occurred while calling the tool: {error}"
    raise error


def propagate_cancellation(failure_error_function: Any = None) -> Any:
    """`failure_error_function` (the agents SDK's default if None), except that a cancellation
    (TerminalError 409) is raised, so that a cancelled invocation stops."""
    fallback = failure_error_function if failure_error_function is not None else default_tool_error_function

    def on_failure(context: Any, error: Exception) -> Any:
        if isinstance(error, TerminalError) and error.status_code == 409:
            raise error from None
        return fallback(context, error)

    return on_failure


def durable_function_tool(
    func: Any = None, *, name_override: typing.Optional[str] = None, description_override: typing.Optional[str] = None,
    docstring_style: Any = None, use_docstring_info: bool = True, failure_error_function: Any = raise_terminal_errors,
    strict_mode: bool = True, is_enabled: Any = True,
) -> Any:
    """`agents.function_tool` whose failures go through `raise_terminal_errors` (by default) and
    never hide a cancellation. Usable bare (`@durable_function_tool`) or with options."""
    options = dict(name_override=name_override, description_override=description_override,
                   docstring_style=docstring_style, use_docstring_info=use_docstring_info,
                   failure_error_function=propagate_cancellation(failure_error_function), strict_mode=strict_mode,
                   is_enabled=is_enabled)
    return _function_tool(func, **options) if callable(func) else _function_tool(**options)


# -- models --------------------------------------------------------------------------------------------

class _Turns:
    """What one run shares between its model and its tools: the tool calls' turns."""

    def __init__(self) -> None:
        self.turnstile = Turnstile([])


class RestateModelResponse(BaseModel):
    """A model response as journaled (the agents SDK's is a dataclass of pydantic fields)."""

    output: typing.List[TResponseOutputItem]
    usage: Usage
    response_id: typing.Optional[str]

    def to_input_items(self) -> typing.List[TResponseInputItem]:
        return [item.model_dump(exclude_unset=True) for item in self.output]  # type: ignore[misc]


class RestateModelWrapper(Model):
    """A model whose every response is a journaled step ("call LLM")."""

    def __init__(self, model: Model, state: _Turns, llm_run_options: RunOptions[Any]) -> None:
        self.model = model
        self.state = state
        self.model_name = "RestateModelWrapper"
        self.llm_run_options = llm_run_options

    async def get_response(self, *args: Any, **kwargs: Any) -> ModelResponse:
        async def call_llm() -> RestateModelResponse:
            response = await self.model.get_response(*args, **kwargs)
            return RestateModelResponse(output=response.output, usage=response.usage, response_id=response.response_id)

        ctx = _context()
        recorded = await ctx.run_typed("call LLM", call_llm, self.llm_run_options)
        self.state.turnstile = Turnstile([item.call_id for item in recorded.output if item.type == "function_call"])
        return ModelResponse(output=recorded.output, usage=recorded.usage, response_id=recorded.response_id)

    def stream_response(self, *args: Any, **kwargs: Any) -> Any:
        raise TerminalError("Streaming is not supported in Restate. Use `get_response` instead.")


class DurableModelCalls(MultiProvider):
    """The agents SDK's model provider, its models journaled."""

    def __init__(self, state: _Turns, llm_retry_opts: RunOptions[Any]) -> None:
        super().__init__()
        self.llm_retry_opts = llm_retry_opts
        self.state = state

    def get_model(self, model_name: typing.Optional[str]) -> Model:
        return RestateModelWrapper(super().get_model(model_name or None), self.state, self.llm_retry_opts)


# -- agents and their tools ----------------------------------------------------------------------------

def _taking_turns(state: _Turns, tool: FunctionTool) -> FunctionTool:
    original = tool.on_invoke_tool

    async def invoke(tool_context: Any, tool_input: Any) -> Any:
        call_id = tool_context.tool_call_id
        await state.turnstile.wait_for(call_id)
        try:
            result = await original(tool_context, tool_input)
        except BaseException:
            state.turnstile.cancel_all_after(call_id)  # the later calls must not touch the context
            raise
        state.turnstile.allow_next_after(call_id)
        return result

    return dataclasses.replace(tool, on_invoke_tool=invoke)


def _durable_agent(agent: Agent[Any], state: _Turns, options: RunOptions[Any]) -> Agent[Any]:
    """A copy of `agent` (and of the agents it hands off to) whose function tools take turns and
    whose `Model` object, if it has one, is journaled."""
    tools = [_taking_turns(state, tool) if isinstance(tool, FunctionTool) else tool for tool in agent.tools]
    handoffs: typing.List[Any] = []
    for handoff in agent.handoffs:
        if isinstance(handoff, Agent):
            handoffs.append(_durable_agent(handoff, state, options))
        elif isinstance(handoff, Handoff):
            handoffs.append(_durable_handoff(handoff, state, options))
        else:
            raise TypeError(f"Unsupported handoff type: {type(handoff)}")
    changes: typing.Dict[str, Any] = {"tools": tools, "handoffs": handoffs}
    if isinstance(agent.model, Model) and not isinstance(agent.model, RestateModelWrapper):
        changes["model"] = RestateModelWrapper(agent.model, state, options)
    return agent.clone(**changes)


def _durable_handoff(handoff: Handoff[Any], state: _Turns, options: RunOptions[Any]) -> Handoff[Any]:
    invoke = handoff.on_invoke_handoff

    async def durable(*args: Any, **kwargs: Any) -> Any:
        return _durable_agent(await invoke(*args, **kwargs), state, options)

    return dataclasses.replace(handoff, on_invoke_handoff=durable)


class RestateSession(SessionABC):
    """The conversation in the virtual object's state ("items"), written once when the run ends."""

    def __init__(self) -> None:
        self._items: typing.Optional[typing.List[Any]] = None

    async def _loaded(self) -> typing.List[Any]:
        if self._items is None:
            self._items = await restate_object_context().get("items") or []
        return self._items

    async def get_items(self, limit: typing.Optional[int] = None) -> typing.List[Any]:
        items = await self._loaded()
        return items[-limit:] if limit is not None else list(items)

    async def add_items(self, items: typing.List[Any]) -> None:
        (await self._loaded()).extend(items)

    async def pop_item(self) -> Any:
        items = await self._loaded()
        return items.pop() if items else None

    def flush(self) -> None:
        restate_object_context().set("items", self._items)

    async def clear_session(self) -> None:
        self._items = []
        restate_object_context().clear("items")


class DurableRunner:
    """`agents.Runner.run`, durable: takes over the run config's model provider (and its model)."""

    @staticmethod
    async def run(starting_agent: Agent[Any], input: Any, *, use_restate_session: bool = False,
                  run_options: typing.Optional[RunOptions[Any]] = None, **kwargs: Any) -> Any:
        """Run `starting_agent` on `input`; `run_options` are the model steps' (retries in place);
        `use_restate_session` keeps the conversation in the virtual object's state. Other keywords
        go to `Runner.run`."""
        state = _Turns()
        options = run_options if run_options is not None else RunOptions()
        run_config = kwargs.pop("run_config", None) or RunConfig()
        changes: typing.Dict[str, Any] = {"model_provider": DurableModelCalls(state, options)}
        if isinstance(run_config.model, Model):
            changes["model"] = RestateModelWrapper(run_config.model, state, options)
        run_config = dataclasses.replace(run_config, **changes)
        session = kwargs.pop("session", None)
        if use_restate_session:
            if session is not None:
                raise TerminalError("When use_restate_session is True, session config cannot be provided.")
            session = RestateSession()
        agent = _durable_agent(starting_agent, state, options)
        try:
            return await Runner.run(starting_agent=agent, input=input, run_config=run_config, session=session, **kwargs)
        finally:
            if isinstance(session, RestateSession):
                session.flush()
