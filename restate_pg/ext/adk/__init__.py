"""restate-sdk's `restate.ext.adk`: durable Google ADK agents.

Add `RestatePlugin()` to an ADK `App`'s plugins and run the `Runner` inside a handler: each model
call is a journaled `ctx.run` step ("call LLM"), so a retried or resumed handler replays the
recorded answers instead of asking the model again, and the tool calls of one answer take their
turns in the answer's order (`ext.turnstile`), so that the steps tools journal (through
`restate_context()`) come in the same order on every replay. `RestateSessionService()` keeps the
ADK sessions in the virtual object's state ("session_store::<id>"); `RestateEventSummarizer`
journals the summarising model call of ADK's event compaction.
"""

from __future__ import annotations

import typing

try:  # the package runs first whichever submodule is imported: the one place to say what is missing
    import google.adk  # noqa: F401
except ImportError:  # pragma: no cover - exercised without the extra
    from restate_pg.ext._requires import missing

    missing("adk", "google-adk", "agents")

from restate_pg.ext.adk.plugin import RestatePlugin
from restate_pg.ext.adk.session import RestateSessionService
from restate_pg.ext.adk.summarizer import RestateEventSummarizer
from restate_pg.api.context import Context, ObjectContext
from restate_pg.ext._requires import context as _context

__all__ = ["RestateSessionService", "RestatePlugin", "RestateEventSummarizer", "restate_object_context",
           "restate_context"]


def restate_object_context() -> ObjectContext:
    """The running handler's context as a virtual object's (for state); a RuntimeError outside one."""
    return typing.cast(ObjectContext, _context())


def restate_context() -> Context:
    """The running handler's context (a RuntimeError outside one): for tools' calls, timers, runs."""
    return typing.cast(Context, _context())
