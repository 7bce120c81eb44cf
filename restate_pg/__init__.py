"""restate-pg: Restate-style durable execution with PostgreSQL as the only infrastructure.

Service code written for restate-sdk runs unchanged after ``import restate_pg as restate``.
"""

import importlib
import typing

from restate_pg import exceptions, logging, serde
from restate_pg.api.app import App, app
from restate_pg.core.version import VERSION
from restate_pg.api.context import (
    Context,
    DurablePromise,
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
from restate_pg.api.cron import Cron, InvalidCron
from restate_pg.api.entry_codec import JournalValueCodec, JournalValueCodecProvider
from restate_pg.connection import ConnectError, connect, with_connection
from restate_pg.api.definitions import Service, VirtualObject, Workflow
from restate_pg.api.errors import (
    RetryableError,
    SdkInternalBaseException,
    TerminalError,
    is_internal_exception,
)
from restate_pg.api.retry import InvocationRetryPolicy, RunOptions
from restate_pg.api.transaction import TransactionOptions
from restate_pg.observability.logs import RestateLoggingFilter, getLogger
from restate_pg.runtime.combinators import as_completed, gather, select, wait_completed

if typing.TYPE_CHECKING:
    from restate_pg.client import (
        ClientError,
        HttpError,
        RestateClient,
        RestateClientSendHandle,
        SyncRestateClient,
        create_client,
        create_sync_client,
        enqueue,
        enqueue_async,
    )
    from restate_pg.admin.cron import cron_schedules
    from restate_pg.testing.harness import HarnessEnvironment, create_test_harness, test_harness


__version__ = VERSION

#: Imported on first use: the client brings database and HTTP drivers that handler modules,
#: which import this package first thing, do not need.
_LAZY = {
    "ClientError": "restate_pg.client.handle",
    "HttpError": "restate_pg.client.handle",
    "HarnessEnvironment": "restate_pg.testing.harness",
    "create_test_harness": "restate_pg.testing.harness",
    "test_harness": "restate_pg.testing.harness",
    "RestateClientSendHandle": "restate_pg.client.handle",
    "RestateClient": "restate_pg.client.base",
    "SyncRestateClient": "restate_pg.client.blocking",
    "create_client": "restate_pg.client.factory",
    "create_sync_client": "restate_pg.client.factory",
    "enqueue": "restate_pg.client.transactional",
    "enqueue_async": "restate_pg.client.transactional",
    "cron_schedules": "restate_pg.admin.cron",
}


def __getattr__(name: str) -> typing.Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'restate_pg' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value

__all__ = [
    "App",
    "ClientError",
    "ConnectError",
    "Context",
    "Cron",
    "DurablePromise",
    "HarnessEnvironment",
    "HttpError",
    "InvalidCron",
    "InvocationRetryPolicy",
    "JournalValueCodec",
    "JournalValueCodecProvider",
    "ObjectContext",
    "ObjectSharedContext",
    "Request",
    "RestateClient",
    "RestateClientSendHandle",
    "RestateDurableCallFuture",
    "RestateDurableFuture",
    "RestateDurableSleepFuture",
    "RestateLoggingFilter",
    "RetryableError",
    "RunOptions",
    "ScopedContext",
    "SdkInternalBaseException",
    "SendHandle",
    "Service",
    "SyncRestateClient",
    "TerminalError",
    "TransactionOptions",
    "VirtualObject",
    "Workflow",
    "WorkflowContext",
    "WorkflowSharedContext",
    "app",
    "as_completed",
    "connect",
    "create_test_harness",
    "create_client",
    "create_sync_client",
    "enqueue",
    "enqueue_async",
    "cron_schedules",
    "exceptions",
    "gather",
    "getLogger",
    "is_internal_exception",
    "logging",
    "select",
    "serde",
    "test_harness",
    "wait_completed",
    "with_connection",
]
