"""The `restate-pg` command: migrate the schema, run workers, serve the ingress, or all at once in
dev; and the operator's commands (invocations, services, deployments, kv, cron, sql).

Each command is a module of this package that adds its own subparser (`add_parser`) and runs it:
`migrate`, `worker`, `serve`, `dev`, `invocations`, `registry` (services and deployments), `kv`,
`cron` and `sql`. This module builds the top parser from them, dispatches, and applies the one
rule by which every command fails:

- a failure ends with one line on stderr, `restate-pg: error: ...` (set RESTATE_PG_DEBUG=1 to get
  the traceback of an unexpected error);
- exit status 2 when the command cannot run as given: a usage error (argparse's own), an argument
  in the wrong form (an invocation id, a VALUE that is not JSON, MODULE:APP, a target without
  --yes), a port in use, or a database not configured, not reachable or not migrated when the
  command starts (a `CLIError`, whose status is 2 unless it says otherwise);
- exit status 1 when it ran and failed: what PostgreSQL refused or lost while it ran (a query
  `restate-pg sql` was given included: every `RestatePgError`), an invocation, state entry,
  deployment or cron job that does not exist, an operation that failed for any invocation, or an
  unexpected error;
- 130 after Ctrl-C.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from restate_pg.cli import cron, dev, invocations, kv, migrate, registry, rules, serve, sql, worker
from restate_pg.cli.arguments import Parser, database_options
from restate_pg.cli.errors import EXIT_FAILURE, EXIT_INTERRUPTED, PROG, CLIError, check_arguments
from restate_pg.cli.loader import load_app
from restate_pg.cli.output import error
from restate_pg.core.errors import RestatePgError

__all__ = ["CLIError", "build_parser", "load_app", "main"]

DEBUG_ENV = "RESTATE_PG_DEBUG"

#: The command modules, in the order `restate-pg --help` lists their commands.
COMMANDS = (migrate, worker, serve, dev, invocations, registry, kv, cron, rules, sql)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("restate-pg")
    except PackageNotFoundError:
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of the `restate-pg` command."""
    parser = Parser(
        prog=PROG,
        description="Restate-style durable execution, with PostgreSQL as the only infrastructure.",
        epilog=(
            "typical use:\n"
            "  restate-pg dev myproject.services:app      # everything in one process, for development\n"
            "  restate-pg migrate                         # once per deployment\n"
            "  restate-pg worker myproject.services:app   # run handlers (any number of processes)\n"
            "  restate-pg serve myproject.services:app    # HTTP ingress\n"
            "  restate-pg invocations cancel inv_1...     # steer an invocation (see --help)\n"
            "  restate-pg cron list                       # the cron schedules\n"
            "  restate-pg rules set checkout --concurrency 50  # a flow-control rule\n"
            "\n"
            f"Run '{PROG} COMMAND --help' for a command's options. "
            f"Set {DEBUG_ENV}=1 to see tracebacks of unexpected errors."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True, parser_class=Parser)
    common = database_options()
    for command in COMMANDS:
        command.add_parser(commands, common)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the `restate-pg` command with `argv` (default: sys.argv[1:]); return the exit status,
    by the rule in this module's docstring."""
    args = build_parser().parse_args(argv)  # a usage error exits 2 here
    args.argv = list(sys.argv[1:] if argv is None else argv)  # what `--processes N` starts its children with
    try:
        check_arguments(args)
        return int(args.handler(args))
    except CLIError as exc:
        error(str(exc))
        return exc.exit_code
    except RestatePgError as exc:
        error(str(exc))
        return EXIT_FAILURE
    except BrokenPipeError:  # `restate-pg ... | head`: the reader has gone, so be quiet
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_FAILURE
    except KeyboardInterrupt:
        if sys.stderr.isatty():
            print(file=sys.stderr)  # end the line the terminal's ^C is on
        return EXIT_INTERRUPTED
    except Exception as exc:
        if os.environ.get(DEBUG_ENV):
            raise
        error(f"unexpected {type(exc).__name__}: {exc} (set {DEBUG_ENV}=1 to see the traceback)")
        return EXIT_FAILURE


if __name__ == "__main__":
    sys.exit(main())
