"""restate-sdk's `restate.context`: the context classes handlers are written against."""

from restate_pg.api.context import (
    AttemptFinishedEvent,
    Context,
    DurablePromise,
    HandlerType,
    KeyValueStore,
    ObjectContext,
    ObjectSharedContext,
    Request,
    RestateDurableCallFuture,
    RestateDurableFuture,
    RestateDurableSleepFuture,
    ScopedContext,
    SendHandle,
    WorkflowContext,
    WorkflowSharedContext,
)
from restate_pg.api.retry import RunOptions

__all__ = [
    "AttemptFinishedEvent", "Context", "DurablePromise", "HandlerType", "KeyValueStore", "ObjectContext",
    "ObjectSharedContext", "Request", "RestateDurableCallFuture", "RestateDurableFuture",
    "RestateDurableSleepFuture", "RunOptions", "ScopedContext", "SendHandle", "WorkflowContext",
    "WorkflowSharedContext",
]
