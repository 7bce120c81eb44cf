"""`restate-pg dev [MODULE:APP]`: migrate, then serve the ingress and run the handlers in one process,
on the configured database or an embedded PostgreSQL."""

from __future__ import annotations

import argparse
import typing
from pathlib import Path
from typing import TYPE_CHECKING

from restate_pg.cli.arguments import (
    ENGINE_OPTIONS,
    Commands,
    add_app,
    add_command,
    add_deployment,
    add_engine_options,
    add_http,
    add_log_level,
    port,
)
from restate_pg.cli.errors import CLIError
from restate_pg.cli.loader import load_app_or_none
from restate_pg.cli.migrate import migrate_schema
from restate_pg.cli.output import info
from restate_pg.cli.processes import add_processes, serve_here, supervise
from restate_pg.cli.store import check_database, database_url
from restate_pg.core.errors import RestatePgError
from restate_pg.store.database import resolve_database_url

if TYPE_CHECKING:
    from restate_pg.store.embedded import EmbeddedPostgres


def add_parser(commands: Commands, common: argparse.ArgumentParser) -> None:
    dev = add_command(
        commands,
        common,
        "dev",
        "migrate, then serve the ingress and run the handlers in one process",
        "For development: migrate the schema, then serve the HTTP ingress with an in-process "
        "worker. With no database configured, starts an embedded PostgreSQL that keeps its "
        "data in --data-dir. Restarted after an edit, it resumes the invocations left in flight "
        "by the earlier code (it marks every earlier deployment compatible with its own).",
    )
    add_app(dev, optional=True)
    add_http(dev)
    dev.add_argument(
        "--admin-port", type=port, default=9070,
        help="port of the admin API (cancel, kill, ...), as Restate's (default: 9070; 0: any free port)",
    )
    dev.add_argument("--no-admin", action="store_true", help="do not serve the admin API")
    add_deployment(dev)
    dev.add_argument(
        "--data-dir",
        type=Path,
        metavar="DIR",
        help="data directory of the embedded PostgreSQL, used when no database is configured "
        "(default: ./.restate-pg/pgdata)",
    )
    add_engine_options(dev, *(flag for flag, _, _ in ENGINE_OPTIONS))
    add_log_level(dev)
    add_processes(dev)
    dev.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    app = load_app_or_none(args.app)  # before starting any database: a typo should fail fast
    if args.supervised is not None:  # one of --processes N: the supervisor migrated, and chose the database
        return _serve(app, database_url(args), args)
    url = resolve_database_url(args.database_url)
    embedded = None
    if url is None:
        from restate_pg.store.embedded import start_embedded

        try:
            embedded = start_embedded(args.data_dir)
        except RestatePgError as exc:
            raise CLIError(str(exc)) from exc
        url = embedded.url
        _announce(embedded)
    else:
        url = database_url(args)
        if args.data_dir is not None:
            info("--data-dir ignored: a database is configured (--database-url or DATABASE_URL)")
    try:
        check_database(url, args.schema, migrated=False)
        migrate_schema(url, args.schema)
        admin_port = None if args.no_admin else args.admin_port
        if args.processes > 1:
            return supervise(args, host=args.host, ports=[("--port", args.port), ("--admin-port", admin_port)],
                             database_url=url)
        return _serve(app, url, args)
    finally:
        if embedded is not None:
            embedded.stop()


def _serve(app: typing.Any, url: str, args: argparse.Namespace) -> int:
    """Serve the ingress and run the handlers in this process, until a signal."""
    return serve_here(
        app, url, args, None if args.no_admin else args.admin_port,
        run_handlers=True, poll_only=False,
        **({"deployment": args.deployment} if args.deployment else {}),
        take_over_deployments=True,  # an edit makes a new deployment: its code resumes the old ones' invocations
    )


def _announce(embedded: EmbeddedPostgres) -> None:
    """Say which embedded server runs, and record its URL for the commands run in this directory
    (`invocations`, `sql`, ...), which have no other way to find a server on a unix socket."""
    what = (
        "reusing the embedded PostgreSQL left running by a killed `restate-pg dev`"
        if embedded.reused_orphan else "embedded PostgreSQL"
    )
    try:
        recorded = f"; recorded in {embedded.record()} for the commands run in this directory"
    except OSError as exc:
        recorded = f"; not recorded for other commands ({exc.strerror})"
    info(f"{what} in {embedded.data_dir} at {embedded.url}{recorded}")
