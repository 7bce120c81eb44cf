"""`restate-pg sql "SELECT ..."`: the introspection views from a terminal, as `restate sql` does.

A table for people by default, `--json` (the same `{"rows": [...]}` as the admin API's `/query`)
for scripts. The query runs read-only, see `restate_pg.store.console`. A query PostgreSQL refuses,
or a database lost while it runs, exits 1, as the other operator commands' failures do.
"""

from __future__ import annotations

import argparse
import sys

from restate_pg.cli.arguments import Commands, add_command, positive_float
from restate_pg.cli.output import print_json, render_table
from restate_pg.cli.store import check_database, database_url
from restate_pg.store.console import DEFAULT_TIMEOUT_S, run_query


def add_parser(commands: Commands, common: argparse.ArgumentParser) -> None:
    command = add_command(
        commands,
        common,
        "sql",
        "run a read-only SQL query over the introspection views",
        "Run one SQL query, read-only, with restate-pg's schema first on the search path: "
        "sys_invocation, sys_journal, state, sys_inbox, sys_keyed_service_status, sys_idempotency, "
        "sys_promise, sys_service and sys_deployment answer as Restate's tables do, and the "
        "application's own tables can be joined.",
    )
    command.add_argument("query", metavar="QUERY", help='the query, e.g. "SELECT id, status FROM sys_invocation"')
    command.add_argument("--json", action="store_true", help='print {"rows": [{column: value}, ...]} instead of a table')
    command.add_argument(
        "--timeout", type=positive_float, default=DEFAULT_TIMEOUT_S, metavar="S",
        help=f"cancel the query after S seconds (default: {DEFAULT_TIMEOUT_S:g})",
    )
    command.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    url = database_url(args)
    check_database(url, args.schema, migrated=True)
    result = run_query(url, args.schema, args.query, timeout_s=args.timeout)  # QueryError: exit status 1
    if args.json:
        print_json({"rows": result.records()})
    else:
        sys.stdout.write(render_table(result))
    sys.stdout.flush()
    return 0
