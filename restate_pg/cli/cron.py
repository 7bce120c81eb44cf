"""`restate-pg cron list|create|enable|disable|delete`: look at and steer schedules from a shell.

It talks to PostgreSQL directly, as `restate_pg.cron_schedules` does, and hints the workers.
"""

from __future__ import annotations

import argparse
import json
import typing

from restate_pg.api.cron import CronNotFound
from restate_pg.cli.arguments import Commands, Parser, add_operator_command
from restate_pg.cli.errors import EXIT_FAILURE, CLIError
from restate_pg.cli.output import print_json
from restate_pg.cli.store import with_store
from restate_pg.store.driver import Store

_COLUMNS = ["name", "target", "schedule", "timezone", "catch_up", "source", "enabled", "next_at", "last_tick_at"]


def add_parser(commands: Commands, common: argparse.ArgumentParser) -> None:
    """`restate-pg cron`, its subcommands taking the database options `common`."""
    command = add_operator_command(
        commands, "cron", "list, create, enable, disable or delete cron schedules",
        "Look at and steer cron schedules, straight through the database.",
    )
    add_arguments(command, [common], Parser)


def add_arguments(
    command: argparse.ArgumentParser, parents: typing.Sequence[argparse.ArgumentParser], parser_class: type
) -> None:
    actions = command.add_subparsers(dest="action", metavar="ACTION", required=True, parser_class=parser_class)
    listing = actions.add_parser("list", parents=list(parents), help="list the schedules",
                                 description="List every schedule, declared in code or made at run time.")
    listing.add_argument("--json", action="store_true", help="print a JSON array, for scripts")
    listing.set_defaults(run=list_schedules)
    creating = actions.add_parser("create", parents=list(parents), help="create a schedule",
                                  description="Create a schedule at run time: its handler must be registered by a worker.")
    creating.add_argument("name", metavar="NAME", help="the schedule's name")
    creating.add_argument("schedule", metavar="SCHEDULE", help="a cron expression: 5 fields, or 6 with seconds first")
    creating.add_argument("target", metavar="SERVICE/HANDLER", help="the handler each tick calls")
    creating.add_argument("--key", help="the object's key, for a virtual object's handler")
    creating.add_argument("--input", metavar="JSON", help="the handler's input, as JSON")
    creating.add_argument("--timezone", default="UTC", help="the IANA time zone of the schedule (default UTC)")
    creating.add_argument("--catch-up", default="latest", choices=["latest", "all", "skip"], help="missed ticks (default latest)")
    creating.add_argument("--scope", help="each tick's flow-control scope (docs/flow-control.md)")
    creating.add_argument("--limit-key", help="each tick's limit key in the scope (one or two parts: tenant[/user])")
    creating.add_argument("--priority", type=int, default=0, help="each tick's priority, -1000 to 1000 (default 0)")
    creating.set_defaults(run=create_schedule)
    for action, summary in (("enable", "resume a schedule from its next tick"), ("disable", "pause a schedule"),
                            ("delete", "delete a schedule (a worker re-creates one declared in code when it starts)")):
        sub = actions.add_parser(action, parents=list(parents), help=summary, description=f"{summary[0].upper()}{summary[1:]}.")
        sub.add_argument("name", metavar="NAME", help="the schedule's name")
        sub.set_defaults(run=delete_schedule if action == "delete" else enable_schedule)


def _schedules(url: str, schema: str, use: typing.Callable[[typing.Any], typing.Awaitable[typing.Any]]) -> typing.Any:
    """Run `use(CronSchedules)` on a store of its own; a missing schedule is a one-line error."""
    from restate_pg.admin.cron import CronSchedules

    async def run(store: Store) -> typing.Any:
        return await use(CronSchedules(store))

    try:
        return with_store(url, schema, run)
    except CronNotFound as exc:
        raise CLIError(str(exc), EXIT_FAILURE) from None


def _table(jobs: typing.Sequence[typing.Mapping[str, typing.Any]]) -> str:
    """Schedules as aligned columns without separators, one line each (its own format, kept for
    scripts that read it)."""
    rows = [
        [job["name"], f"{job['service']}{'/' + job['key'] if job['key'] is not None else ''}/{job['handler']}",
         job["schedule"], job["timezone"], job["catch_up"], job["source"], "yes" if job["enabled"] else "no",
         job["next_at"], job["last_tick_at"] or "-"]
        for job in jobs
    ]
    widths = [max(len(str(cell)) for cell in column) for column in zip(_COLUMNS, *rows)]
    return "\n".join("  ".join(str(cell).ljust(width) for cell, width in zip(line, widths)).rstrip()
                     for line in [list(_COLUMNS), *rows])


def list_schedules(url: str, schema: str, args: argparse.Namespace) -> int:
    jobs = _schedules(url, schema, lambda schedules: schedules.list())
    if args.json:
        print_json(jobs)
    elif not jobs:
        print("no cron jobs")
    else:
        print(_table(jobs))
    return 0


def create_schedule(url: str, schema: str, args: argparse.Namespace) -> int:
    from restate_pg.api.cron import Cron, InvalidCron

    try:  # an argument in the wrong form: status 2
        value = None if args.input is None else json.loads(args.input)
        cron = Cron(args.name, args.schedule, args.target, key=args.key, input=value, timezone=args.timezone,
                    catch_up=args.catch_up, scope=args.scope, limit_key=args.limit_key, priority=args.priority)
    except json.JSONDecodeError as exc:
        raise CLIError(f"--input is not JSON: {exc}") from None
    except InvalidCron as exc:
        raise CLIError(str(exc)) from None
    try:  # refused by the registry, or the name is taken: it ran and failed
        job = _schedules(url, schema, lambda schedules: schedules.create(cron))
    except InvalidCron as exc:
        raise CLIError(str(exc), EXIT_FAILURE) from None
    print(f"created cron job {args.name!r}, next tick {job['next_at']}")
    return 0


def enable_schedule(url: str, schema: str, args: argparse.Namespace) -> int:
    job = _schedules(url, schema, lambda schedules: schedules.set_enabled(args.name, args.action == "enable"))
    print(f"cron job {args.name!r} {'enabled' if job['enabled'] else 'disabled'}, next tick {job['next_at']}")
    return 0


def delete_schedule(url: str, schema: str, args: argparse.Namespace) -> int:
    _schedules(url, schema, lambda schedules: schedules.delete(args.name))
    print(f"deleted cron job {args.name!r}")
    return 0
