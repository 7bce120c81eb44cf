"""restate-sdk's `restate.retry_policy`."""

from restate_pg.api.retry import InvocationRetryPolicy

__all__ = ["InvocationRetryPolicy"]
