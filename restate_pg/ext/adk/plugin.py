"""`RestatePlugin`: the ADK plugin that journals an agent's model calls and orders its tool calls.

Model calls happen in `before_model_callback`: the plugin asks the model itself, inside a
`ctx.run` step ("call LLM"), and hands ADK the recorded answer, so ADK never calls the model on
its own. A function call the model left without an id gets one inside the step: ADK would
otherwise draw a new random id on every replay. The tool calls of one answer then pass a
turnstile in the answer's order.
"""

from __future__ import annotations

import typing

from google.adk.agents import BaseAgent, LlmAgent
from google.adk.agents.callback_context import CallbackContext
from google.adk.agents.invocation_context import InvocationContext
from google.adk.flows.llm_flows.functions import generate_client_function_call_id
from google.adk.models.base_llm import BaseLlm
from google.adk.models.llm_request import LlmRequest
from google.adk.models.llm_response import LlmResponse
from google.adk.plugins import BasePlugin
from google.adk.tools.base_tool import BaseTool
from google.adk.tools.tool_context import ToolContext
from google.genai import types

from restate_pg.api.context import Context
from restate_pg.api.errors import TerminalError
from restate_pg.api.retry import RunOptions
from restate_pg.ext.adk.session import RestateSessionService
from restate_pg.ext.turnstile import Turnstile
from restate_pg.runtime.current import current_context
from restate_pg.runtime.extension_data import clear_extension_data, get_extension_data, set_extension_data

Any = typing.Any

_NO_CONTEXT = ("No Restate context found for RestatePlugin: run the agent (its Runner) inside a restate-pg "
               "handler.")


def _key(invocation_id: str) -> str:
    return "adk_" + invocation_id


def _function_calls(response: LlmResponse) -> typing.List[types.FunctionCall]:
    parts = response.content.parts if response.content and response.content.parts else []
    return [part.function_call for part in parts if part.function_call]


class PluginState:
    """What one ADK run of an agent keeps in the attempt's extension data: the agent's model and
    the turns of the current answer's tool calls. An agent run inside another's (a transfer)
    hides the outer one's state until it ends."""

    def __init__(self, model: BaseLlm) -> None:
        self.model = model
        self.turnstile = Turnstile([])
        self.outer: typing.Optional[PluginState] = None

    def __close__(self) -> None:
        """The attempt ended (returned, failed or suspended): tool calls still waiting fail."""
        state: typing.Optional[PluginState] = self
        while state is not None:
            state.turnstile.cancel_all()
            state = state.outer

    @staticmethod
    def create(invocation_id: str, model: BaseLlm, ctx: Context) -> None:
        state = PluginState(model)
        state.outer = get_extension_data(ctx, _key(invocation_id))
        set_extension_data(ctx, _key(invocation_id), state)

    @staticmethod
    def clear(invocation_id: str) -> None:
        ctx = _handler_context()
        state: typing.Optional[PluginState] = get_extension_data(ctx, _key(invocation_id))
        if state is not None and state.outer is not None:
            set_extension_data(ctx, _key(invocation_id), state.outer)
        else:
            clear_extension_data(ctx, _key(invocation_id))

    @staticmethod
    def from_context(invocation_id: str, ctx: typing.Optional[Context] = None) -> PluginState:
        state = get_extension_data(ctx if ctx is not None else _handler_context(), _key(invocation_id))
        if state is None:
            raise RuntimeError("No RestatePlugin state found: the agent must run inside a restate-pg handler, "
                               "with RestatePlugin among its app's plugins.")
        return typing.cast(PluginState, state)


def _handler_context() -> Context:
    ctx = current_context()
    if ctx is None:
        raise RuntimeError(_NO_CONTEXT)
    return ctx


class RestatePlugin(BasePlugin):
    """Durable ADK agents: model calls as journaled steps, tool calls in the model's order, and
    the session stored when the run ends (with `RestateSessionService`). `run_options` are the
    model steps' (retries in place)."""

    def __init__(self, *, run_options: typing.Optional[RunOptions[Any]] = None) -> None:
        super().__init__(name="restate_plugin")
        self._run_options = run_options if run_options is not None else RunOptions()

    async def before_agent_callback(self, *, agent: BaseAgent,
                                    callback_context: CallbackContext) -> typing.Optional[types.Content]:
        if not isinstance(agent, LlmAgent):
            raise TerminalError("RestatePlugin only supports LlmAgent agents.")
        ctx = current_context()
        if ctx is None:
            raise TerminalError(_NO_CONTEXT)
        PluginState.create(callback_context.invocation_id, agent.canonical_model, ctx)
        return None

    async def after_agent_callback(self, *, agent: BaseAgent,
                                   callback_context: CallbackContext) -> typing.Optional[types.Content]:
        PluginState.clear(callback_context.invocation_id)
        return None

    async def after_run_callback(self, *, invocation_context: InvocationContext) -> None:
        service = invocation_context.session_service
        if isinstance(service, RestateSessionService):
            await service.flush_session_state(invocation_context.session)

    async def before_model_callback(self, *, callback_context: CallbackContext,
                                    llm_request: LlmRequest) -> typing.Optional[LlmResponse]:
        """Ask the model in a journaled step, and answer ADK with the recorded response."""
        ctx = current_context()
        if ctx is None:
            raise TerminalError(_NO_CONTEXT)
        state = PluginState.from_context(callback_context.invocation_id, ctx)
        response = await _generate_content_async(ctx, self._run_options, state.model, llm_request)
        state.turnstile = Turnstile([call.id for call in _function_calls(response) if call.id])
        return response

    async def before_tool_callback(self, *, tool: BaseTool, tool_args: typing.Dict[str, Any],
                                   tool_context: ToolContext) -> typing.Optional[typing.Dict[str, Any]]:
        await PluginState.from_context(tool_context.invocation_id).turnstile.wait_for(_call_id(tool_context))
        return None

    async def after_tool_callback(self, *, tool: BaseTool, tool_args: typing.Dict[str, Any], tool_context: ToolContext,
                                  result: typing.Dict[str, Any]) -> typing.Optional[typing.Dict[str, Any]]:
        PluginState.from_context(tool_context.invocation_id).turnstile.allow_next_after(_call_id(tool_context))
        return None

    async def on_tool_error_callback(self, *, tool: BaseTool, tool_args: typing.Dict[str, Any],
                                     tool_context: ToolContext, error: Exception) -> typing.Optional[typing.Dict[str, Any]]:
        """A failed tool call: the later ones of the answer fail too (they must not journal)."""
        PluginState.from_context(tool_context.invocation_id).turnstile.cancel_all_after(_call_id(tool_context))
        return None


def _call_id(tool_context: ToolContext) -> str:
    call_id = tool_context.function_call_id
    if call_id is None:
        raise TerminalError("Function call ID is required for tool invocation.")
    return call_id


async def _generate_content_async(ctx: Context, run_options: RunOptions[Any], model: BaseLlm,
                                  llm_request: LlmRequest) -> LlmResponse:
    """One model call as a journaled step ("call LLM"), its function calls' ids drawn inside it."""

    async def call_llm() -> LlmResponse:
        answers = model.generate_content_async(llm_request, stream=False)
        try:
            response = await anext(answers)
        finally:
            await answers.aclose()
        for call in _function_calls(response):
            if not call.id:
                call.id = generate_client_function_call_id()
        return response

    return await ctx.run_typed("call LLM", call_llm, run_options)
