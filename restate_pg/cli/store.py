"""The database of a command: its URL resolved and checked, and the store for one operator command
(opened, used, closed, on its own event loop)."""

from __future__ import annotations

import argparse
import asyncio
import sys
import typing

from restate_pg.cli.errors import PROG, CLIError
from restate_pg.core.errors import RestatePgError
from restate_pg.store.database import (
    ConfigurationError,
    check_reachable,
    resolve_database_url,
    to_psycopg_conninfo,
)
from restate_pg.store.driver import Store

T = typing.TypeVar("T")


def database_url(args: argparse.Namespace) -> str:
    """`--database-url`, else `$DATABASE_URL`, else the embedded PostgreSQL that `restate-pg dev`
    recorded in this directory (saying so on stderr, since nothing on the command line shows it),
    checked for form; a `CLIError` when there is none."""
    url = resolve_database_url(args.database_url)
    if url is None and args.command != "dev":
        url = _recorded_embedded_url()
    if url is None:
        hint = "" if args.command == "dev" else " (`restate-pg dev` can run an embedded PostgreSQL)"
        raise CLIError(f"no database configured: pass --database-url or set DATABASE_URL{hint}")
    try:
        to_psycopg_conninfo(url)
    except ConfigurationError as exc:
        raise CLIError(str(exc)) from exc
    return url


def _recorded_embedded_url() -> str | None:
    """The URL of the embedded server `restate-pg dev` recorded in the current directory, if any;
    a `CLIError` when it was recorded but no longer runs."""
    from restate_pg.store.embedded import read_record

    recorded = read_record()
    if recorded is None:
        return None
    if not recorded.running():
        raise CLIError(
            f"no database configured, and the embedded PostgreSQL of `restate-pg dev` in {recorded.data_dir} "
            "is not running: start `restate-pg dev` in this directory, or pass --database-url or set DATABASE_URL"
        )
    print(
        f"{PROG}: using the embedded PostgreSQL of `restate-pg dev` in {recorded.data_dir} "
        f"(recorded in {recorded.record}; --database-url or DATABASE_URL for another)",
        file=sys.stderr, flush=True,
    )
    return recorded.url


def check_database(url: str, schema: str, *, migrated: bool) -> None:
    """Fail before the command starts (a `CLIError`, exit status 2) when the database cannot be
    reached or, with `migrated`, its schema is not at this version's revision."""
    from restate_pg.store.migrate import check_migrated

    try:
        check_reachable(url)
        if migrated:
            check_migrated(url, schema)
    except RestatePgError as exc:
        raise CLIError(str(exc)) from exc


def operate(args: argparse.Namespace) -> int:
    """Run an operator command (invocations, services, deployments, kv, cron) on a migrated
    database: `args.run(url, schema, args)`, set by its subcommand."""
    url = database_url(args)
    check_database(url, args.schema, migrated=True)
    return int(args.run(url, args.schema, args))


def with_store(url: str, schema: str, use: typing.Callable[[Store], typing.Awaitable[T]]) -> T:
    """Run `use(store)` with a small connection pool on `url`, then close it."""

    async def run() -> T:
        store = Store(url, schema, min_size=1, max_size=2, prepare=False)
        await store.open()
        try:
            return await use(store)
        finally:
            await store.close()

    return asyncio.run(run())
