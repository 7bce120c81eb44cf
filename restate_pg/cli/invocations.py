"""`restate-pg invocations ...`: list and describe invocations, and steer them as the admin API does.

Reads go through the introspection views, read-only (`store.console`); operations talk to
PostgreSQL directly (no admin server needed) and wake the workers concerned with NOTIFY, exactly
as the admin router does, with the admin API's answers and messages.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import typing

from restate_pg.services.answers import OPERATIONS, Answer, perform
from restate_pg.services.deployments import stranded_messages
from restate_pg.api.durations import InvalidDuration, parse_duration
from restate_pg.cli.arguments import Commands, Parser, add_operator_command
from restate_pg.cli.errors import PROG, CLIError
from restate_pg.cli.output import print_json, print_result, render_table
from restate_pg.core.ids import is_invocation_id
from restate_pg.store.console import QueryResult, run_query
from restate_pg.store.queries import Queries

#: The statuses of `sys_invocation`, Restate's vocabulary.
STATUSES = ("pending", "scheduled", "ready", "running", "backing-off", "suspended", "paused", "completed")
#: Operations that apply to completed invocations; the others to unfinished ones.
_ON_COMPLETED = ("purge", "purge-journal", "restart-as-new")
#: Above this many invocations, an operation reports its progress on stderr.
_PROGRESS_FROM = 20


def add_parser(commands: Commands, common: argparse.ArgumentParser) -> None:
    """`restate-pg invocations`, its subcommands taking the database options `common`."""
    command = add_operator_command(
        commands, "invocations", "list, describe, cancel, kill, pause, resume, purge or restart invocations",
        "List and describe invocations, and steer them as Restate's admin API does (same status codes "
        "and messages), straight through the database.",
    )
    add_arguments(command, [common], Parser)


def add_arguments(
    command: argparse.ArgumentParser, parents: typing.Sequence[argparse.ArgumentParser], parser_class: type
) -> None:
    """The subcommands of `restate-pg invocations`."""
    commands = command.add_subparsers(dest="operation", metavar="COMMAND", required=True, parser_class=parser_class)
    listing = commands.add_parser("list", parents=list(parents), help="list invocations, newest first",
                                  description="List invocations, newest first, with their status in Restate's vocabulary.")
    listing.add_argument("--service", metavar="NAME", help="only this service")
    listing.add_argument("--handler", dest="handler_name", metavar="NAME", help="only this handler")
    listing.add_argument("--key", metavar="KEY", help="only this object key or workflow id")
    listing.add_argument("--status", action="append", choices=STATUSES, metavar="STATUS",
                         help=f"only this status (repeatable): {', '.join(STATUSES)}")
    listing.add_argument("--older-than", type=_duration, metavar="AGE", help="created longer ago than AGE (e.g. 1h, 2 days)")
    listing.add_argument("--newer-than", type=_duration, metavar="AGE", help="created within AGE")
    listing.add_argument("--limit", type=_positive, default=50, metavar="N", help="at most N (default: 50)")
    listing.add_argument("--json", action="store_true", help="print JSON for scripts")
    listing.set_defaults(run=list_invocations)

    describe = commands.add_parser("describe", parents=list(parents), help="status, attempts, failure and journal of one invocation",
                                   description="Show one invocation: its target, status, attempts, last failure and result, "
                                   "and its journal as a timeline.")
    describe.add_argument("id", metavar="ID", help="an invocation id (inv_1...)")
    describe.add_argument("--json", action="store_true", help="print JSON for scripts")
    describe.set_defaults(run=describe_invocation)

    for operation in OPERATIONS.values():
        sub = commands.add_parser(operation.name, parents=list(parents), help=operation.summary,
                                  description=f"{operation.summary[0].upper()}{operation.summary[1:]}.")
        sub.add_argument("ids", nargs="+", metavar="ID", help="invocation ids, or every invocation of a target: "
                         "SERVICE, SERVICE/HANDLER or OBJECT/KEY/HANDLER")
        if operation.name == "restart-as-new":
            sub.add_argument("--from", dest="prefix", type=_index, default=0, metavar="N",
                             help="replay the old journal up to entry N (default: 0, from scratch)")
        sub.add_argument("--yes", action="store_true", help="do not ask before acting on every invocation of a target")
        sub.add_argument("--json", action="store_true", help="print one JSON array of results, for scripts")
        sub.set_defaults(run=steer)


def _duration(text: str) -> float:
    try:
        return parse_duration(text).total_seconds()
    except InvalidDuration as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
    return int(text)


def _index(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected a journal index (0 or more), got {text!r}")
    return int(text)


# -- reading -------------------------------------------------------------------------------------


def list_invocations(url: str, schema: str, args: argparse.Namespace) -> int:
    result = run_query(url, schema, Queries(schema).OPERATOR_LIST_INVOCATIONS, {
        "service": args.service, "handler": args.handler_name, "key": args.key, "statuses": args.status,
        "older_than_s": args.older_than, "newer_than_s": args.newer_than, "limit": args.limit,
    })
    print_result(result, args.json)
    if any(record.get("stranded") for record in result.records()):
        _explain_stranded(url, schema)
    return 0


def _explain_stranded(url: str, schema: str) -> None:
    """Below the listing, on stderr: which deployments no live worker resumes, and the command
    that lets the newest live deployment resume them."""
    found = run_query(url, schema, Queries(schema).OPERATOR_STRANDED).records()
    if not found:
        return  # a worker took them over meanwhile
    taker, resumes = found[0]["live_deployment"], found[0]["resumes"] or []
    stranded = {row["deployment"]: row["invocations"] for row in found}
    for message in stranded_messages(stranded, taker, resumes, schema):
        print(f"{PROG}: {message}", file=sys.stderr)


def describe_invocation(url: str, schema: str, args: argparse.Namespace) -> int:
    if not is_invocation_id(args.id):
        raise CLIError(f"'{args.id}' is not an invocation id (inv_1...)")
    q = Queries(schema)
    found = run_query(url, schema, q.OPERATOR_DESCRIBE_INVOCATION, {"id": args.id}).records()
    if not found:
        raise CLIError(f"unknown invocation '{args.id}'", exit_code=1)
    journal = run_query(url, schema, q.OPERATOR_JOURNAL, {"id": args.id})
    invocation = found[0]
    if args.json:
        print_json({"invocation": invocation, "journal": journal.records()})
        return 0
    outcome = invocation["status"]
    if invocation["completion_result"]:
        outcome += f" ({invocation['completion_failure'] or 'success'})"
    facts = [
        ("id", invocation["id"]), ("target", invocation["target"]), ("status", outcome),
        ("attempts", invocation["attempts"]), ("last failure", invocation["last_failure"]),
        ("next retry at", invocation["next_retry_at"]), ("idempotency key", invocation["idempotency_key"]),
        ("invoked by", invocation["invoked_by_target"] or invocation["invoked_by"]),
        ("restarted from", invocation["restarted_from"]), ("deployment", invocation["pinned_deployment_id"]),
        ("created at", invocation["created_at"]), ("modified at", invocation["modified_at"]),
        ("completed at", invocation["completed_at"]),
    ]
    width = max(len(name) for name, _ in facts)
    for name, value in facts:
        if value is not None:
            print(f"{name.ljust(width)}  {value}")
    print("\njournal:")
    timeline = QueryResult(["index", "entry", "name", "completed", "detail", "appended at"], [
        (r["index"], r["entry_type"], r["name"], r["completed"],
         r["invoked_target"] or r["promise_name"] or r["sleep_wakeup_at"], r["appended_at"])
        for r in journal.records()
    ])
    sys.stdout.write(render_table(timeline, count=False))
    return 0


# -- steering ------------------------------------------------------------------------------------


def _resolve_ids(url: str, schema: str, args: argparse.Namespace) -> typing.List[str]:
    """Invocation ids as given, and every invocation of the targets given instead of ids."""
    ids: typing.List[str] = []
    services: typing.Optional[typing.Set[str]] = None
    for given in args.ids:
        if is_invocation_id(given):
            ids.append(given)
            continue
        parts = given.split("/")
        if services is None:
            services = {row["name"] for row in run_query(url, schema, Queries(schema).OPERATOR_SERVICES).records()}
        if len(parts) > 3 or not all(parts) or parts[0] not in services:
            raise CLIError(f"'{given}' is neither an invocation id (inv_1...) nor a target of a registered service "
                           "(SERVICE, SERVICE/HANDLER or OBJECT/KEY/HANDLER)")
        service, key, handler = parts[0], parts[1] if len(parts) == 3 else None, parts[-1] if len(parts) > 1 else None
        matched = [row["id"] for row in run_query(url, schema, Queries(schema).OPERATOR_TARGET_INVOCATIONS, {
            "service": service, "handler": handler, "key": key, "completed": args.operation in _ON_COMPLETED,
        }).records()]
        kind = "completed" if args.operation in _ON_COMPLETED else "unfinished"
        if not matched:
            print(f"restate-pg: no {kind} invocations of {given}", file=sys.stderr)
        elif not args.yes and not _confirm(f"{args.operation} {len(matched)} {kind} invocation(s) of {given}?"):
            raise CLIError(f"{len(matched)} {kind} invocation(s) of {given} match: pass --yes to {args.operation} them")
        ids += matched
    return ids


def _confirm(question: str) -> bool:
    if not sys.stdin.isatty():
        return False
    return input(f"{question} [y/N] ").strip().lower() in ("y", "yes")


async def _perform_all(url: str, schema: str, args: argparse.Namespace, ids: typing.Sequence[str]) -> typing.List[typing.Tuple[str, Answer]]:
    from restate_pg.api.app import App
    from restate_pg.services.gateway import Gateway

    engine = Gateway(App([]), url, schema=schema, poll_only=True, pool_size=2)  # operates, runs nothing
    await engine.start()
    try:
        options = {"prefix": args.prefix} if args.operation == "restart-as-new" else {}
        results = []
        step = max(1, len(ids) // 10)
        for done, invocation_id in enumerate(ids, 1):
            results.append((invocation_id, await perform(engine, args.operation, invocation_id, **options)))
            if len(ids) >= _PROGRESS_FROM and (done % step == 0 or done == len(ids)):
                print(f"restate-pg: {args.operation}: {done}/{len(ids)}", file=sys.stderr, flush=True)
        return results
    finally:
        await engine.stop()  # after the wake-ups it sent


def steer(url: str, schema: str, args: argparse.Namespace) -> int:
    """Perform the operation on every invocation given; exit status 1 if it failed for any."""
    results = asyncio.run(_perform_all(url, schema, args, _resolve_ids(url, schema, args)))
    if args.json:
        print_json([
            {"invocation_id": invocation_id, "status": answer.status, "message": answer.message,
             **({"new_invocation_id": answer.new_invocation_id} if answer.new_invocation_id else {})}
            for invocation_id, answer in results
        ])
    else:
        for invocation_id, answer in results:
            stream = sys.stdout if answer.ok else sys.stderr
            prefix = "" if answer.ok else "restate-pg: error: "
            print(f"{prefix}{invocation_id}: {answer.message}", file=stream, flush=True)
    return 0 if all(answer.ok for _, answer in results) else 1
