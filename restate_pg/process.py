"""`open_process`: the process a transport serves from, composed in one place.

The transports (ingress, admin API, clients, test harness) use the services of a `Gateway` and
never import the worker; what they serve from is composed here: a worker (`Engine`, a gateway that
also claims and runs invocations and plugs itself into the services as their `LocalWorker`) when
the process runs handlers, else a bare gateway. This is the composition root below the CLI.
"""

from __future__ import annotations

import typing

from restate_pg.api.app import App
from restate_pg.services.gateway import Gateway

#: Options only a worker takes; a gateway that runs no handlers ignores them, as the engine did.
WORKER_OPTIONS = frozenset({"concurrency", "lease_seconds", "deployment", "take_over_deployments", "default_retry_policy"})


def open_process(app: App, database_url: str, *, run_handlers: bool = True, **options: typing.Any) -> Gateway:
    """Build (not start) the process for `app`: a worker when `run_handlers`, else a gateway.
    `options` are the engine's (`schema`, `poll_interval`, `concurrency`, ...)."""
    if run_handlers:
        from restate_pg.worker.engine import Engine

        return Engine(app, database_url, **options)
    return Gateway(app, database_url, **{name: value for name, value in options.items() if name not in WORKER_OPTIONS})
