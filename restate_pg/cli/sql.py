"""`restate-pg sql "SELECT ..."`: the introspection views from a terminal, as `restate sql` does.

A table for people by default, `--json` (the same `{"rows": [...]}` as the admin API's `/query`)
for scripts. The query runs read-only, see `restate_pg.store.console`.
"""

from __future__ import annotations

import argparse
import sys
import typing


from restate_pg.core.errors import DatabaseUnavailable
from restate_pg.cli.output import print_json, render_table
from restate_pg.store.console import DEFAULT_TIMEOUT_S, QueryError, run_query

AddCommand = typing.Callable[[str, str, str], argparse.ArgumentParser]


def add_sql_command(add_command: AddCommand) -> None:
    """Register `sql` with `build_parser`'s `add_command`."""
    from restate_pg.cli.main import _positive_float

    command = add_command(
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
        "--timeout", type=_positive_float, default=DEFAULT_TIMEOUT_S, metavar="S",
        help=f"cancel the query after S seconds (default: {DEFAULT_TIMEOUT_S:g})",
    )
    command.set_defaults(handler=_cmd_sql)


def _cmd_sql(args: argparse.Namespace) -> int:
    from restate_pg.cli.main import CLIError, _check_database, _database_url

    url = _database_url(args)
    _check_database(url, args.schema, migrated=True)
    try:
        result = run_query(url, args.schema, args.query, timeout_s=args.timeout)
    except (QueryError, DatabaseUnavailable) as exc:
        raise CLIError(str(exc)) from exc
    if args.json:
        print_json({"rows": result.records()})
    else:
        sys.stdout.write(render_table(result))
    sys.stdout.flush()
    return 0
