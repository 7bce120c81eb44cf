"""`RestateMiddleware`: the LangChain agent middleware that journals model responses and orders
tool calls.

The turns of the current answer's tool calls live in the attempt's extension data, not in a
context variable: LangGraph runs the model and each tool call in tasks of their own, and a
variable set in the model's task would not reach the tools' tasks.
"""

from __future__ import annotations

import typing

from langchain.agents.middleware import AgentMiddleware
from langchain.agents.middleware.types import ModelRequest, ModelResponse
from langchain_core.messages import AIMessage, AnyMessage, BaseMessage, ToolMessage
from langgraph.prebuilt.tool_node import ToolCallRequest
from langgraph.types import Command
from pydantic import BaseModel

from restate_pg.api.context import Context
from restate_pg.api.retry import RunOptions
from restate_pg.ext.turnstile import Turnstile
from restate_pg.runtime.current import current_context
from restate_pg.runtime.extension_data import get_extension_data, set_extension_data

Any = typing.Any
ToolCallResult = typing.Union[ToolMessage, Command]

_STATE = "langchain-state"


class SerializableModelResponse(BaseModel):
    """A model response as journaled. Its messages are `AnyMessage` (a union told apart by each
    message's type) so that an AIMessage comes back as one, with its tool calls."""

    result: typing.List[AnyMessage]
    structured_response: typing.Optional[Any] = None


class _State:
    """The middleware's state for one attempt: the turns of the current answer's tool calls."""

    __slots__ = ("turnstile",)

    def __init__(self) -> None:
        self.turnstile = Turnstile([])

    def __close__(self) -> None:
        """The attempt ended: tool calls still waiting for their turn fail."""
        self.turnstile.cancel_all()


def _state(ctx: Context) -> _State:
    state: typing.Optional[_State] = get_extension_data(ctx, _STATE)
    if state is None:
        state = _State()
        set_extension_data(ctx, _STATE, state)
    return state


class RestateMiddleware(AgentMiddleware):  # type: ignore[type-arg]
    """Makes a `create_agent` agent durable: each model response a journaled step ("LLM call"),
    the tool calls of one response one at a time, in its order. `run_options` are the model
    steps' (retries in place); their serde is the middleware's own."""

    def __init__(self, run_options: typing.Optional[RunOptions[Any]] = None) -> None:
        super().__init__()
        self._options: RunOptions[Any] = run_options or RunOptions()

    async def awrap_model_call(self, request: ModelRequest,  # type: ignore[type-arg]
                               handler: typing.Callable[[ModelRequest], typing.Awaitable[ModelResponse]],  # type: ignore[type-arg]
                               ) -> ModelResponse:  # type: ignore[type-arg]
        ctx = current_context()
        if ctx is None:
            raise RuntimeError("RestateMiddleware must run inside a restate-pg handler: call agent.ainvoke(...) "
                               "from a handler.")

        async def call_model() -> SerializableModelResponse:
            response: Any = await handler(request)
            if isinstance(response, AIMessage):
                return SerializableModelResponse(result=[response])
            return SerializableModelResponse(result=response.result, structured_response=response.structured_response)

        journaled = await ctx.run_typed("LLM call", call_model, self._options)
        structured = journaled.structured_response
        schema = getattr(request.response_format, "schema", None)
        if structured is not None and isinstance(schema, type) and issubclass(schema, BaseModel):
            structured = schema.model_validate(structured)  # the journal holds its JSON
        answer = next((message for message in journaled.result if isinstance(message, AIMessage)), None)
        if answer is not None:
            calls = [call_id for call in answer.tool_calls or [] if (call_id := call.get("id")) is not None]
            _state(ctx).turnstile = Turnstile(calls)
        return ModelResponse(result=typing.cast(typing.List[BaseMessage], journaled.result),
                             structured_response=structured)

    async def awrap_tool_call(self, request: ToolCallRequest,
                              handler: typing.Callable[[ToolCallRequest], typing.Awaitable[ToolCallResult]],
                              ) -> ToolCallResult:
        """The tool call in its turn; its ToolMessage's id drawn from `ctx.uuid()` (the same on a replay)."""
        call_id = request.tool_call.get("id")
        if call_id is None:
            return ToolMessage("Function call ID is required for tool invocation. Please set `id` on the ToolCall.",
                               tool_call_id="", status="error")
        ctx = current_context()
        if ctx is None:
            raise RuntimeError("RestateMiddleware must run inside a restate-pg handler")
        turnstile = _state(ctx).turnstile
        try:
            await turnstile.wait_for(call_id)
            result = await handler(request)
            turnstile.allow_next_after(call_id)
        except BaseException:
            turnstile.cancel_all_after(call_id)  # the later calls of the answer must not journal
            raise
        if isinstance(result, ToolMessage):
            result.id = str(ctx.uuid())
        return result
