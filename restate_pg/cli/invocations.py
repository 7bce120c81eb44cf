"""`restate-pg invocations OPERATION ID...`: steer invocations from a shell, as the admin API does.

It talks to PostgreSQL directly (no admin server needed) and wakes the workers concerned with
NOTIFY, exactly as the admin router does; the answers and their messages are the admin API's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import typing

from restate_pg.admin.operations import OPERATIONS, Answer, perform


def add_arguments(
    command: argparse.ArgumentParser, parents: typing.Sequence[argparse.ArgumentParser], parser_class: type
) -> None:
    """The subcommands of `restate-pg invocations`, one per operation."""
    operations = command.add_subparsers(dest="operation", metavar="OPERATION", required=True, parser_class=parser_class)
    for operation in OPERATIONS.values():
        sub = operations.add_parser(operation.name, parents=list(parents), help=operation.summary,
                                    description=f"{operation.summary[0].upper()}{operation.summary[1:]}.")
        sub.add_argument("ids", nargs="+", metavar="ID", help="invocation ids (inv_1...)")
        if operation.name == "restart-as-new":
            sub.add_argument("--from", dest="prefix", type=int, default=0, metavar="N",
                             help="replay the old journal up to entry N (default: 0, from scratch)")
        sub.add_argument("--json", action="store_true", help="print one JSON array of results, for scripts")


async def _perform_all(url: str, schema: str, args: argparse.Namespace) -> typing.List[typing.Tuple[str, Answer]]:
    from restate_pg.api.app import App
    from restate_pg.worker.engine import Engine

    engine = Engine(App([]), url, schema=schema, run_handlers=False, poll_only=True, pool_size=2)
    await engine.start()
    try:
        options = {"prefix": args.prefix} if args.operation == "restart-as-new" else {}
        return [(invocation_id, await perform(engine, args.operation, invocation_id, **options)) for invocation_id in args.ids]
    finally:
        await engine.stop()  # after the wake-ups it sent


def run(url: str, schema: str, args: argparse.Namespace) -> int:
    """Perform the operation on every id; exit status 1 if any of them failed."""
    results = asyncio.run(_perform_all(url, schema, args))
    if args.json:
        print(json.dumps([
            {"invocation_id": invocation_id, "status": answer.status, "message": answer.message,
             **({"new_invocation_id": answer.new_invocation_id} if answer.new_invocation_id else {})}
            for invocation_id, answer in results
        ], indent=2))
    else:
        for invocation_id, answer in results:
            stream = sys.stdout if answer.ok else sys.stderr
            prefix = "" if answer.ok else "restate-pg: error: "
            print(f"{prefix}{invocation_id}: {answer.message}", file=stream, flush=True)
    return 0 if all(answer.ok for _, answer in results) else 1
