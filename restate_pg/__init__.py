"""restate-pg: Restate-style durable execution with PostgreSQL as the only infrastructure.

Service code written for restate-sdk runs unchanged after ``import restate_pg as restate``.
"""

from restate_pg import exceptions, serde
from restate_pg.api.app import App, app
from restate_pg.api.context import (
    Context,
    DurablePromise,
    ObjectContext,
    ObjectSharedContext,
    Request,
    RestateDurableCallFuture,
    RestateDurableFuture,
    RestateDurableSleepFuture,
    SendHandle,
    WorkflowContext,
    WorkflowSharedContext,
)
from restate_pg.api.definitions import Service, VirtualObject, Workflow
from restate_pg.api.errors import (
    RetryableError,
    SdkInternalBaseException,
    TerminalError,
    is_internal_exception,
)
from restate_pg.api.retry import InvocationRetryPolicy, RunOptions
from restate_pg.observability.logs import RestateLoggingFilter, getLogger
from restate_pg.runtime.combinators import as_completed, gather, select, wait_completed

__version__ = "0.1.0"

__all__ = [
    "App",
    "Context",
    "DurablePromise",
    "InvocationRetryPolicy",
    "ObjectContext",
    "ObjectSharedContext",
    "Request",
    "RestateDurableCallFuture",
    "RestateDurableFuture",
    "RestateDurableSleepFuture",
    "RestateLoggingFilter",
    "RetryableError",
    "RunOptions",
    "SdkInternalBaseException",
    "SendHandle",
    "Service",
    "TerminalError",
    "VirtualObject",
    "Workflow",
    "WorkflowContext",
    "WorkflowSharedContext",
    "app",
    "as_completed",
    "exceptions",
    "gather",
    "getLogger",
    "is_internal_exception",
    "select",
    "serde",
    "wait_completed",
]
