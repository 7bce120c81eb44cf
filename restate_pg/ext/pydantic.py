"""restate-sdk's `restate.ext.pydantic`: durable pydantic-ai agents.

`RestateAgent(agent)` runs a pydantic-ai agent inside a handler with each model request journaled
as a `ctx.run` step ("Model call"): a retried or resumed handler replays the recorded responses
instead of asking the model again, so the conversation it rebuilds is the one that happened. With
`auto_wrap_tools=True` each function tool call is a `ctx.run` step too ("Calling {tool}"); tools
that do not take it call `restate_context()` themselves for calls, timers and runs. The tool
calls of one model response take their turns in the response's order (`ext.turnstile`), so that
their steps are journaled in the same order on every replay. MCP toolsets list and call their
tools in steps of their own.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import typing

try:
    from pydantic_ai.agent.wrapper import WrapperAgent
    from pydantic_ai.exceptions import ApprovalRequired, CallDeferred, ModelRetry, UserError
    from pydantic_ai.messages import ModelResponse
    from pydantic_ai.models import Model, StreamedResponse
    from pydantic_ai.models.wrapper import WrapperModel
    from pydantic_ai.toolsets.function import FunctionToolset
    from pydantic_ai.toolsets.wrapper import WrapperToolset
except ImportError:  # pragma: no cover - exercised without the extra
    from restate_pg.ext._requires import missing

    missing("pydantic", "pydantic-ai", "agents")

from restate_pg.api.context import Context, ObjectContext
from restate_pg.api.errors import SdkInternalBaseException, TerminalError
from restate_pg.api.retry import RunOptions
from restate_pg.ext._requires import context as _context
from restate_pg.ext._pydantic_serde import PydanticTypeAdapter, handler_context as _handler_context
from restate_pg.ext.turnstile import Turnstile

__all__ = ["RestateModelWrapper", "RestateAgent", "PydanticTypeAdapter", "RestateContextRunToolSet",
           "restate_object_context", "restate_context"]

T = typing.TypeVar("T")
Any = typing.Any


def restate_context() -> Context:
    """The running handler's context (a RuntimeError outside one): for tools' calls, timers, runs."""
    return typing.cast(Context, _context())


def restate_object_context() -> ObjectContext:
    """The running handler's context as a virtual object's (for state)."""
    return typing.cast(ObjectContext, _context())


# -- the turns of one agent run ----------------------------------------------------------------------

class _RunState:
    """What one agent run shares between its model and its tools: the tool calls' turns."""

    def __init__(self) -> None:
        self.turnstile = Turnstile([])


_STATE: contextvars.ContextVar[_RunState] = contextvars.ContextVar("restate_pg_pydantic_run", default=_RunState())


@contextlib.contextmanager
def _run_state() -> typing.Iterator[None]:
    token = _STATE.set(_RunState())
    try:
        yield
    finally:
        _STATE.reset(token)


def _journal_error(what: str, error: SdkInternalBaseException) -> Exception:
    """restate-pg's internal unwinding (a suspension), disguised so that pydantic-ai does not
    catch it as a model or tool failure of its own; the handler ends with it all the same."""
    return Exception(f"Internal error during {what}")


# -- the model ----------------------------------------------------------------------------------------

MODEL_RESPONSE_SERDE: PydanticTypeAdapter[ModelResponse] = PydanticTypeAdapter(ModelResponse)


class _RecordedStream(StreamedResponse):
    """A streamed response replayed from the journal: the whole response, no events."""

    def __init__(self, model_request_parameters: Any, response: ModelResponse) -> None:
        super().__init__(model_request_parameters)
        self.response = response

    async def _get_event_iterator(self) -> typing.AsyncIterator[Any]:
        return
        yield  # an async generator that yields nothing

    def get(self) -> ModelResponse:
        return self.response

    @property
    def usage(self) -> Any:  # type: ignore[override]
        return self.response.usage

    @property
    def model_name(self) -> str:
        return self.response.model_name or ""

    @property
    def provider_name(self) -> str:
        return self.response.provider_name or ""

    @property
    def provider_url(self) -> typing.Optional[str]:
        return self.response.provider_url

    @property
    def timestamp(self) -> Any:
        return self.response.timestamp


class RestateModelWrapper(WrapperModel):
    """A model whose every request is a journaled `ctx.run` step."""

    def __init__(self, wrapped: Model, run_options: RunOptions[Any], event_stream_handler: Any = None) -> None:
        super().__init__(wrapped)
        self._options = dataclasses.replace(run_options, serde=MODEL_RESPONSE_SERDE)
        self._event_stream_handler = event_stream_handler

    async def request(self, *args: Any, **kwargs: Any) -> ModelResponse:
        ctx = _handler_context("A model")
        try:
            response = await ctx.run_typed("Model call", self.wrapped.request, self._options, *args, **kwargs)
        except SdkInternalBaseException as exc:
            raise _journal_error("model call", exc) from exc
        _STATE.get().turnstile = Turnstile([call.tool_call_id for call in response.tool_calls])
        return response

    @contextlib.asynccontextmanager
    async def request_stream(
        self, messages: Any, model_settings: Any, model_request_parameters: Any, run_context: Any = None,
    ) -> typing.AsyncIterator[StreamedResponse]:
        """Streams to the event stream handler once, inside the step; a replay gets the whole response."""
        if run_context is None:
            raise UserError("A model cannot be streamed without a run context: set an `event_stream_handler` "
                            "on the agent and use `agent.run()` instead.")
        handler = self._event_stream_handler
        assert handler is not None

        async def stream() -> ModelResponse:
            async with self.wrapped.request_stream(messages, model_settings, model_request_parameters, run_context) as streamed:
                await handler(run_context, streamed)
                async for _ in streamed:
                    pass
            return streamed.get()

        ctx = _handler_context("A model")
        try:
            response = await ctx.run_typed("Model stream call", stream, self._options)
        except SdkInternalBaseException as exc:
            raise _journal_error("model stream call", exc) from exc
        yield _RecordedStream(model_request_parameters, response)


# -- the tools ----------------------------------------------------------------------------------------

@dataclasses.dataclass
class _ToolOutcome:
    """A tool call's outcome as journaled: pydantic-ai's control-flow exceptions become values, so
    that the step succeeds (a raised one would be retried) and they are raised again outside it."""

    kind: typing.Literal["output", "call_deferred", "approval_required", "model_retry"]
    output: Any
    error: typing.Optional[str] = None


_TOOL_OUTCOME_SERDE: PydanticTypeAdapter[_ToolOutcome] = PydanticTypeAdapter(_ToolOutcome)


class RestateContextRunToolSet(WrapperToolset[Any]):
    """Function tools whose every call is a journaled `ctx.run` step, in the model's order."""

    def __init__(self, wrapped: Any, run_options: RunOptions[Any]) -> None:
        super().__init__(wrapped)
        self.options = dataclasses.replace(run_options, serde=_TOOL_OUTCOME_SERDE)

    async def call_tool(self, name: str, tool_args: typing.Dict[str, Any], ctx: Any, tool: Any) -> Any:
        async def call() -> _ToolOutcome:
            try:
                return _ToolOutcome("output", await self.wrapped.call_tool(name, tool_args, ctx, tool))
            except ModelRetry as exc:
                return _ToolOutcome("model_retry", None, exc.message)
            except CallDeferred:
                return _ToolOutcome("call_deferred", None)
            except ApprovalRequired:
                return _ToolOutcome("approval_required", None)
            except UserError as exc:
                raise TerminalError(str(exc)) from exc

        call_id = ctx.tool_call_id
        if call_id is None:
            raise TerminalError("Tool call ID is required for turnstile synchronization.")
        handler_ctx = _handler_context("A tool")
        turnstile = _STATE.get().turnstile
        try:
            await turnstile.wait_for(call_id)
            outcome = await handler_ctx.run_typed(f"Calling {name}", call, self.options)
        except SdkInternalBaseException as exc:
            turnstile.cancel_all_after(call_id)
            raise RuntimeError() from exc
        except Exception:
            turnstile.cancel_all_after(call_id)
            raise
        if outcome.kind == "output":
            turnstile.allow_next_after(call_id)
            return outcome.output
        turnstile.cancel_all_after(call_id)
        if outcome.kind == "model_retry":
            raise ModelRetry(outcome.error or "")
        raise CallDeferred() if outcome.kind == "call_deferred" else ApprovalRequired()

    def visit_and_replace(self, visitor: typing.Callable[[Any], Any]) -> Any:
        return visitor(self)


def _mcp_toolset(toolset: Any, run_options: RunOptions[Any]) -> typing.Optional[Any]:
    """An MCP toolset whose listing and calls are steps, if pydantic-ai's MCP support is installed."""
    try:
        from pydantic_ai.mcp import MCPToolset
    except ImportError:
        return None
    if not isinstance(toolset, MCPToolset):
        return None
    from restate_pg.ext._pydantic_mcp import RestateMCPToolset

    return RestateMCPToolset(toolset, run_options)


# -- the agent ----------------------------------------------------------------------------------------

class RestateAgent(WrapperAgent[Any, Any]):
    """A pydantic-ai agent whose model requests (and, with `auto_wrap_tools`, tool calls) are
    journaled steps of the running handler. Its model is fixed when it is wrapped."""

    def __init__(self, wrapped: Any, *, event_stream_handler: Any = None, auto_wrap_tools: bool = False,
                 run_options: typing.Optional[RunOptions[Any]] = None) -> None:
        super().__init__(wrapped)
        if not isinstance(wrapped.model, Model):
            raise TerminalError("An agent needs to have a `model` in order to be used with Restate, it cannot be "
                                "set at agent run time.")
        self._event_stream_handler = event_stream_handler
        self._auto_wrap_tools = auto_wrap_tools
        options = run_options if run_options is not None else RunOptions()
        self._model = RestateModelWrapper(wrapped.model, options, event_stream_handler=event_stream_handler)

        def durable(toolset: Any) -> Any:
            if auto_wrap_tools and isinstance(toolset, FunctionToolset):
                return RestateContextRunToolSet(toolset, options)
            return _mcp_toolset(toolset, options) or toolset

        self._toolsets = [toolset.visit_and_replace(durable) for toolset in wrapped.toolsets]

    @contextlib.contextmanager
    def _durable(self) -> typing.Iterator[None]:
        with super().override(model=self._model, toolsets=self._toolsets, tools=[], native_tools=[]), _run_state():
            yield

    @property
    def model(self) -> Any:
        return self._model

    @property
    def event_stream_handler(self) -> Any:
        handler = self._event_stream_handler or super().event_stream_handler
        if handler is None or not self._auto_wrap_tools:
            return handler
        return self.wrapped_event_stream_handler

    async def wrapped_event_stream_handler(self, ctx: Any, stream: typing.AsyncIterable[Any]) -> None:
        """Each event handed to the handler in a step of its own, so that a replay does not repeat it."""
        handler = self._event_stream_handler
        if handler is None:
            return
        restate_ctx = _handler_context("The event stream handler of a RestateAgent")
        async for event in stream:
            async def one(event: Any = event) -> typing.AsyncIterator[Any]:
                yield event

            await restate_ctx.run_typed("run event", lambda one=one: handler(ctx, one()))

    @property
    def toolsets(self) -> typing.Sequence[Any]:
        with self._durable():
            return super().toolsets

    async def run(  # noqa: PLR0913 - pydantic-ai's parameters, as restate-sdk's RestateAgent takes them
        self, user_prompt: Any = None, *, output_type: Any = None, message_history: Any = None,
        deferred_tool_results: Any = None, conversation_id: typing.Optional[str] = None, model: Any = None,
        instructions: Any = None, deps: Any = None, model_settings: Any = None, usage_limits: Any = None,
        usage: Any = None, metadata: Any = None, retries: Any = None, infer_name: bool = True, toolsets: Any = None,
        event_stream_handler: Any = None, capabilities: Any = None, spec: Any = None,
    ) -> Any:
        """pydantic-ai's `Agent.run`, durable; `model` cannot be chosen per run (it is journaled)."""
        if model is not None:
            raise TerminalError("An agent needs to have a `model` in order to be used with Restate, it cannot be "
                                "set at agent run time.")
        with self._durable():
            return await super(WrapperAgent, self).run(
                user_prompt, output_type=output_type, message_history=message_history,
                deferred_tool_results=deferred_tool_results, conversation_id=conversation_id, instructions=instructions,
                deps=deps, model_settings=model_settings, usage_limits=usage_limits, usage=usage, metadata=metadata,
                retries=retries, infer_name=infer_name, toolsets=toolsets, event_stream_handler=event_stream_handler,
                capabilities=capabilities, spec=spec,
            )

    @contextlib.asynccontextmanager
    async def run_stream(
        self, user_prompt: Any = None, *, output_type: Any = None, message_history: Any = None,
        deferred_tool_results: Any = None, conversation_id: typing.Optional[str] = None, model: Any = None,
        instructions: Any = None, deps: Any = None, model_settings: Any = None, usage_limits: Any = None,
        usage: Any = None, metadata: Any = None, retries: Any = None, infer_name: bool = True, toolsets: Any = None,
        event_stream_handler: Any = None, capabilities: Any = None, spec: Any = None,
    ) -> typing.AsyncIterator[Any]:
        """Not durable (a stream cannot be replayed piecewise): refused, as restate-sdk does."""
        raise UserError("RestateAgent does not support run_stream currently.")
        yield  # an async generator, for asynccontextmanager
