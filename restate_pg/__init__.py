"""restate-pg: Restate-style durable execution with PostgreSQL as the only infrastructure.

Service code written for restate-sdk runs unchanged after ``import restate_pg as restate``.
"""

import typing

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
from restate_pg.api.cron import Cron, InvalidCron
from restate_pg.api.definitions import Service, VirtualObject, Workflow
from restate_pg.api.errors import (
    RetryableError,
    SdkInternalBaseException,
    TerminalError,
    is_internal_exception,
)
from restate_pg.api.retry import InvocationRetryPolicy, RunOptions
from restate_pg.runtime.combinators import as_completed, gather, select, wait_completed

if typing.TYPE_CHECKING:
    from restate_pg.admin.cron import CronSchedules



def cron_schedules(database_url: str, schema: str = "restate") -> "typing.AsyncContextManager[CronSchedules]":
    """Manage schedules at run time: `async with cron_schedules(url) as s: await s.create(Cron(...))`."""
    from restate_pg.admin.cron import cron_schedules as open_schedules

    return open_schedules(database_url, schema)


__version__ = "0.1.0"

__all__ = [
    "App",
    "Context",
    "Cron",
    "DurablePromise",
    "InvalidCron",
    "InvocationRetryPolicy",
    "ObjectContext",
    "ObjectSharedContext",
    "Request",
    "RestateDurableCallFuture",
    "RestateDurableFuture",
    "RestateDurableSleepFuture",
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
    "cron_schedules",
    "exceptions",
    "gather",
    "is_internal_exception",
    "select",
    "serde",
    "wait_completed",
]
