"""`restate-pg serve MODULE:APP`: the HTTP ingress (and the admin API), without running handlers."""

from __future__ import annotations

import argparse

from restate_pg.cli.arguments import (
    POLL_ONLY_HELP,
    Commands,
    add_app,
    add_command,
    add_engine_options,
    add_http,
    add_log_level,
    port,
)
from restate_pg.cli.loader import load_app
from restate_pg.cli.processes import add_processes, serve_here, supervise
from restate_pg.cli.store import check_database, database_url


def add_parser(commands: Commands, common: argparse.ArgumentParser) -> None:
    command = add_command(
        commands,
        common,
        "serve",
        "serve the HTTP ingress (without running handlers)",
        "Accept calls and sends over HTTP and hand them to the workers through PostgreSQL. "
        "Handlers run in `restate-pg worker` processes.",
    )
    add_app(command)
    add_http(command)
    command.add_argument("--poll-only", action="store_true", help=POLL_ONLY_HELP)
    add_engine_options(command, "--poll-interval", "--pool-size", "--concurrency")
    add_log_level(command)
    add_processes(command)
    command.add_argument(
        "--admin-port", type=port, default=None,
        help="also serve the admin API (cancel, kill, services, SQL, ...) on this port, e.g. 9070; protect "
        "it as you would any operator's interface (default: not served)",
    )
    command.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    url = database_url(args)
    check_database(url, args.schema, migrated=True)
    app = load_app(args.app)
    if args.processes > 1 and args.supervised is None:
        return supervise(
            args, host=args.host, ports=[("--port", args.port), ("--admin-port", args.admin_port)],
            database_url=url,
        )
    return serve_here(app, url, args, args.admin_port, run_handlers=False, poll_only=args.poll_only)
