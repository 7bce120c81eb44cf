"""`restate-pg worker [MODULE:APP]`: claim and run invocations of the application's handlers and of the registered SDK endpoints."""

from __future__ import annotations

import argparse
import functools
from typing import Any

from restate_pg.cli.arguments import (
    ENGINE_OPTIONS,
    POLL_ONLY_HELP,
    Commands,
    add_app,
    add_command,
    add_deployment,
    add_engine_options,
    add_log_level,
    engine_options,
    port,
)
from restate_pg.cli.loader import load_app_or_none
from restate_pg.cli.output import info
from restate_pg.cli.running import configure_logging, import_runtime, run_until_signalled, tune_gc
from restate_pg.cli.store import check_database, database_url
from restate_pg.store.database import describe_target


def add_parser(commands: Commands, common: argparse.ArgumentParser) -> None:
    worker = add_command(
        commands,
        common,
        "worker",
        "run the handlers of an application",
        "Claim and run invocations of the application's handlers until stopped. Start as many "
        "worker processes as you like; SIGINT or SIGTERM stops one gracefully.",
    )
    add_app(worker, optional=True)
    worker.add_argument("--poll-only", action="store_true", help=POLL_ONLY_HELP)
    add_deployment(worker)
    worker.add_argument(
        "--metrics-port", type=port, metavar="PORT",
        help="serve Prometheus metrics at GET /metrics on this port (needs restate-pg[metrics])",
    )
    worker.add_argument(
        "--metrics-host", default="127.0.0.1", metavar="HOST",
        help="address of the metrics port (default: 127.0.0.1)",
    )
    add_engine_options(worker, *(flag for flag, _, _ in ENGINE_OPTIONS))
    add_log_level(worker)
    worker.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    url = database_url(args)
    check_database(url, args.schema, migrated=True)
    app = load_app_or_none(args.app)
    run_worker = import_runtime("restate_pg.worker", "run_worker")
    configure_logging(args.log_level, args.log_format)
    options: dict[str, Any] = {
        "database_url": url,
        "schema": args.schema,
        "poll_only": args.poll_only,
        **engine_options(args),
    }
    if args.deployment:
        options["deployment"] = args.deployment
    if args.metrics_port is not None:
        serve_metrics = import_runtime("restate_pg.admin.metrics", "serve_metrics")
        options["alongside"] = functools.partial(_metrics, serve_metrics, args.metrics_host, args.metrics_port)
    services = ", ".join(sorted(app.services)) or "no services"
    info(f"worker for {services} on {describe_target(url)}, schema {args.schema!r}")
    tune_gc()
    return run_until_signalled(run_worker(app, **options))


def _metrics(serve_metrics: Any, host: str, port: int, engine: Any) -> Any:
    """`GET /metrics` of the worker's engine on host:port, for as long as the worker runs."""
    return serve_metrics(engine, host, port)
