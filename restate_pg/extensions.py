"""restate-sdk's `restate.extensions`: for libraries built on top of the SDK (agent integrations,
tracing): the context of the handler running in the current task, and `contextvar`."""

from restate_pg.context_managers import contextvar
from restate_pg.runtime.current import current_context

__all__ = ["contextvar", "current_context"]
