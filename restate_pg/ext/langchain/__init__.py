"""restate-sdk's `restate.ext.langchain`: durable LangChain agents.

Pass `RestateMiddleware()` to `langchain.agents.create_agent(..., middleware=[...])` and run the
agent (`await agent.ainvoke(...)`) inside a handler: each model response is a journaled `ctx.run`
step ("LLM call"), so a retried or resumed handler replays the recorded answers instead of asking
the model again. The middleware does not journal tool calls: a tool makes its side effects
durable itself, with `restate_context().run_typed(...)`; the tool calls of one answer take their
turns in the answer's order, so that those steps come in the same order on every replay.
"""

from __future__ import annotations

import typing

try:
    import langchain.agents  # noqa: F401
    import langgraph  # noqa: F401
except ImportError:  # pragma: no cover - exercised without the extra
    from restate_pg.ext._requires import missing

    missing("langchain", "langchain", "agents")

from restate_pg.api.context import Context, ObjectContext
from restate_pg.ext._requires import context as _context
from restate_pg.ext.langchain._middleware import RestateMiddleware

__all__ = ["RestateMiddleware", "restate_context", "restate_object_context"]


def restate_context() -> Context:
    """The running handler's context (a RuntimeError outside one): for a tool's runs, calls, timers."""
    return typing.cast(Context, _context())


def restate_object_context() -> ObjectContext:
    """The running handler's context as a virtual object's (for state)."""
    return typing.cast(ObjectContext, _context())
