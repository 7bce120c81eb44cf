"""`restate-pg migrate`: create or upgrade restate-pg's schema (`dev` migrates the same way)."""

from __future__ import annotations

import argparse

from restate_pg.cli.arguments import Commands, add_command
from restate_pg.cli.output import info
from restate_pg.cli.store import check_database, database_url
from restate_pg.store.database import describe_target


def add_parser(commands: Commands, common: argparse.ArgumentParser) -> None:
    command = add_command(
        commands,
        common,
        "migrate",
        "create or upgrade restate-pg's tables",
        "Create the schema and its tables, or upgrade them to this version of restate-pg. "
        "Safe to run repeatedly and from several processes at once.",
    )
    command.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    url = database_url(args)
    check_database(url, args.schema, migrated=False)
    migrate_schema(url, args.schema)
    return 0


def migrate_schema(url: str, schema: str) -> None:
    """Upgrade `schema` to this version's revision, saying what changed."""
    from restate_pg.store.migrate import current_revision, upgrade

    where = describe_target(url)
    before = current_revision(url, schema)
    upgrade(url, schema)
    after = current_revision(url, schema)
    if before == after:
        info(f"schema {schema!r} on {where} is up to date (revision {after})")
    elif before is None:
        info(f"created schema {schema!r} on {where} at revision {after}")
    else:
        info(f"migrated schema {schema!r} on {where} from revision {before} to {after}")
