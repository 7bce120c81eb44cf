"""`restate-pg cron list|enable|disable|delete`: look at and steer schedules from a shell.

It talks to PostgreSQL directly, as `restate_pg.cron_schedules` does, and hints the workers.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import typing

from restate_pg.api.cron import CronNotFound

_COLUMNS = ("name", "target", "schedule", "timezone", "catch_up", "source", "enabled", "next_at", "last_tick_at")


def add_arguments(
    command: argparse.ArgumentParser, parents: typing.Sequence[argparse.ArgumentParser], parser_class: type
) -> None:
    actions = command.add_subparsers(dest="action", metavar="ACTION", required=True, parser_class=parser_class)
    listing = actions.add_parser("list", parents=list(parents), help="list the schedules",
                                 description="List every schedule, declared in code or made at run time.")
    listing.add_argument("--json", action="store_true", help="print a JSON array, for scripts")
    for action, summary in (("enable", "resume a schedule from its next tick"), ("disable", "pause a schedule"),
                            ("delete", "delete a schedule (a worker re-creates one declared in code when it starts)")):
        sub = actions.add_parser(action, parents=list(parents), help=summary, description=f"{summary[0].upper()}{summary[1:]}.")
        sub.add_argument("name", metavar="NAME", help="the schedule's name")


async def _act(url: str, schema: str, args: argparse.Namespace) -> typing.Any:
    from restate_pg.admin.cron import cron_schedules

    async with cron_schedules(url, schema) as schedules:
        if args.action == "list":
            return await schedules.list()
        if args.action == "delete":
            return await schedules.delete(args.name)
        return await schedules.set_enabled(args.name, args.action == "enable")


def _table(jobs: typing.Sequence[typing.Mapping[str, typing.Any]]) -> str:
    rows = [
        [job["name"], f"{job['service']}{'/' + job['key'] if job['key'] is not None else ''}/{job['handler']}",
         job["schedule"], job["timezone"], job["catch_up"], job["source"], "yes" if job["enabled"] else "no",
         job["next_at"], job["last_tick_at"] or "-"]
        for job in jobs
    ]
    widths = [max(len(str(cell)) for cell in column) for column in zip(_COLUMNS, *rows)]
    return "\n".join("  ".join(str(cell).ljust(width) for cell, width in zip(line, widths)).rstrip()
                     for line in [list(_COLUMNS), *rows])


def run(url: str, schema: str, args: argparse.Namespace) -> int:
    """Perform the action; a missing schedule is a one-line error (raised as the CLI's error)."""
    from restate_pg.cli.main import EXIT_FAILURE, CLIError

    try:
        result = asyncio.run(_act(url, schema, args))
    except CronNotFound as exc:
        raise CLIError(str(exc), EXIT_FAILURE) from None
    if args.action == "list":
        print(json.dumps(result, indent=2) if args.json else (_table(result) if result else "no cron jobs"))
    elif args.action == "delete":
        print(f"deleted cron job {args.name!r}")
    else:
        print(f"cron job {args.name!r} {'enabled' if result['enabled'] else 'disabled'}, next tick {result['next_at']}")
    return 0
