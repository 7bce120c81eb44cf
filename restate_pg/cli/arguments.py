"""The arguments several commands share: the parser class, value types, and option groups.

They live here, apart from the commands, so that each command module adds its own subparser with
the same flags, help texts and one-line errors without importing another command (or `main`).
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any, NoReturn, TypeAlias

from restate_pg.cli.errors import EXIT_USAGE, PROG
from restate_pg.cli.store import operate
from restate_pg.observability.logs import LOG_FORMATS
from restate_pg.store.database import ConfigurationError, validate_schema_name
from restate_pg.store.migrate import SCHEMA_ENV
from restate_pg.store.queries import DEFAULT_SCHEMA

DEPLOYMENT_ENV = "RESTATE_PG_DEPLOYMENT"

#: What `add_subparsers` returns: the commands (or actions) a parser dispatches to.
Commands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"

LOG_LEVELS = ("critical", "error", "warning", "info", "debug")

#: Engine settings the commands expose: (flag, keyword argument of the engine, help). Defaults
#: are the engine's; tests/test_cli.py checks that the numbers quoted here match them.
ENGINE_OPTIONS: tuple[tuple[str, str, str], ...] = (
    (
        "--lease-seconds",
        "lease_seconds",
        "how long a silent worker keeps its invocations before others take them over (default: 15)",
    ),
    ("--poll-interval", "poll_interval", "how often to look for work when no NOTIFY arrives (default: 1)"),
    (
        "--inactivity-timeout",
        "inactivity_timeout",
        "how long a waiting invocation stays in memory before it suspends, unless its handler "
        "sets inactivity_timeout; 0 suspends at every await not already complete (default: 5)",
    ),
    ("--pool-size", "pool_size", "most database connections the process opens (default: 10)"),
    (
        "--concurrency",
        "concurrency",
        "most invocations this process runs at once, not counting those waiting in memory for a "
        "timer or a result (default: 100; 256 in a process with no application, whose attempts are "
        "exchanges with SDK endpoints that run the handlers in their own processes); sends beyond it "
        "wait in memory, leased to this process, and start as attempts end",
    ),
)

POLL_ONLY_HELP = (
    "never LISTEN for wake-ups, poll instead (needed behind pgbouncer in transaction mode; "
    "adds up to the poll interval of latency)"
)


class Parser(argparse.ArgumentParser):
    """argparse, with errors in the same one-line form as everything else."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{PROG}: error: {message}\n")


# --- value types -----------------------------------------------------------------------------


def schema_name(value: str) -> str:
    try:
        return validate_schema_name(value)
    except ConfigurationError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def positive_float(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {value!r}") from None
    if not 0 < number < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {value!r}")
    return number


def non_negative_float(value: str) -> float:
    """Seconds that may be 0: `--inactivity-timeout 0` suspends at every await not already
    complete, as Restate's always-suspending mode does."""
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {value!r}") from None
    if not 0 <= number < float("inf"):
        raise argparse.ArgumentTypeError(f"expected zero or a positive number, got {value!r}")
    return number


def positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {value!r}")
    return number


def port(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = -1
    if not 0 <= number <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port number (0-65535), got {value!r}")
    return number


# --- option groups ---------------------------------------------------------------------------


def database_options() -> argparse.ArgumentParser:
    """The parent parser of every command: `--database-url` and `--schema`."""
    common = Parser(add_help=False)
    database = common.add_argument_group("database")
    database.add_argument(
        "--database-url",
        metavar="URL",
        help="PostgreSQL to use, as postgresql://user:password@host:5432/dbname "
        "(default: $DATABASE_URL)",
    )
    database.add_argument(
        "--schema",
        metavar="NAME",
        type=schema_name,
        default=os.environ.get(SCHEMA_ENV) or DEFAULT_SCHEMA,
        help=f"schema holding restate-pg's tables (default: ${SCHEMA_ENV}, else {DEFAULT_SCHEMA!r})",
    )
    return common


def add_command(
    commands: Commands, common: argparse.ArgumentParser, name: str, summary: str, description: str
) -> argparse.ArgumentParser:
    """A command that takes the database options itself (not through subcommands)."""
    return commands.add_parser(name, parents=[common], help=summary, description=description)


def add_operator_command(
    commands: Commands, name: str, summary: str, description: str
) -> argparse.ArgumentParser:
    """An operator command (invocations, services, ...): its subcommands take the database options."""
    command = commands.add_parser(name, help=summary, description=description)
    command.set_defaults(handler=operate)
    return command


def add_app(command: argparse.ArgumentParser, optional: bool = False) -> None:
    command.add_argument(
        "app",
        metavar="MODULE:APP",
        nargs="?" if optional else None,
        help="the application: a module importable from the current directory (or the path "
        "of a .py file) and the name of its restate_pg.App, e.g. myproject.services:app"
        + ("; without it, only the SDK endpoints registered with `restate-pg deployments register` "
           "(or Restate's CLI) are served" if optional else ""),
    )


def add_log_level(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--log-level", choices=LOG_LEVELS, default="info", help="logging verbosity (default: info)"
    )
    command.add_argument(
        "--log-format", choices=LOG_FORMATS, default="text",
        help="text lines, or one JSON object per line with the invocation's id, service, handler, "
        "key and attempt (default: text)",
    )


def add_engine_options(command: argparse.ArgumentParser, *flags: str) -> None:
    tuning = command.add_argument_group("tuning")
    for flag, keyword, help_text in ENGINE_OPTIONS:
        if flag in flags:
            if keyword in ("pool_size", "concurrency"):
                tuning.add_argument(flag, dest=keyword, type=positive_int, metavar="N", help=help_text)
            elif keyword == "inactivity_timeout":
                tuning.add_argument(flag, dest=keyword, type=non_negative_float, metavar="S", help=help_text)
            else:
                tuning.add_argument(flag, dest=keyword, type=positive_float, metavar="S", help=help_text)


def engine_options(args: argparse.Namespace) -> dict[str, Any]:
    """The engine options given on the command line (the others keep the engine's defaults)."""
    return {
        keyword: getattr(args, keyword)
        for _, keyword, _ in ENGINE_OPTIONS
        if getattr(args, keyword, None) is not None
    }


def add_deployment(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--deployment", metavar="NAME", default=os.environ.get(DEPLOYMENT_ENV) or None,
        help="the application version this process runs, e.g. a release tag or commit: invocations "
        f"it starts are resumed only by workers of the same deployment (default: ${DEPLOYMENT_ENV}, "
        "else the app's own, else one derived from the handlers' code)",
    )


def add_http(command: argparse.ArgumentParser) -> None:
    http = command.add_argument_group("http")
    http.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    http.add_argument("--port", type=port, default=8080, help="port to listen on (default: 8080)")
