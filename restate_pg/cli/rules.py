"""`restate-pg rules list|set|delete`: flow-control rules from a shell, as Restate's
`restate rules set checkout --concurrency 50` (docs/flow-control.md).

It talks to PostgreSQL directly, through the same rule book as the admin API, and hints the workers.
"""

from __future__ import annotations

import argparse
import typing

from restate_pg.cli.arguments import Commands, Parser, add_operator_command
from restate_pg.cli.errors import EXIT_FAILURE, CLIError
from restate_pg.cli.output import print_json
from restate_pg.cli.store import with_store
from restate_pg.store.driver import Store


def add_parser(commands: Commands, common: argparse.ArgumentParser) -> None:
    """`restate-pg rules`, its subcommands taking the database options `common`."""
    command = add_operator_command(
        commands, "rules", "list, set or delete flow-control rules",
        "Flow-control rules by pattern ('*', 'scope', 'scope/key', 'scope/*' ...): concurrency, rate and backlog limits.",
    )
    actions = command.add_subparsers(dest="action", metavar="ACTION", required=True, parser_class=Parser)
    listing = actions.add_parser("list", parents=[common], help="list the rules", description="List every rule.")
    listing.add_argument("--json", action="store_true", help="print a JSON array, for scripts")
    listing.set_defaults(run=list_rules)
    setting = actions.add_parser("set", parents=[common], help="create or replace a rule",
                                 description="Create or replace the rule of PATTERN with the limits given (the others are cleared).")
    setting.add_argument("pattern", metavar="PATTERN", help="'*', 'scope', 'scope/key', 'scope/*', 'scope/key/sub' ...")
    setting.add_argument("--concurrency", type=int, help="most invocations running at once")
    setting.add_argument("--rate", type=int, metavar="TOKENS", help="most first attempts started per --per")
    setting.add_argument("--per", type=int, default=1000, metavar="MS", help="the rate's interval in ms (default 1000)")
    setting.add_argument("--burst", type=int, help="the rate's bucket size (default: TOKENS)")
    setting.add_argument("--backlog", type=int, help="most invocations queued; more are refused with 429")
    setting.add_argument("--description", help="free text shown with the rule")
    setting.add_argument("--disabled", action="store_true", help="keep the rule but do not apply it")
    setting.set_defaults(run=set_rule)
    deleting = actions.add_parser("delete", parents=[common], help="delete rules", description="Delete the rules of the patterns given.")
    deleting.add_argument("patterns", metavar="PATTERN", nargs="+")
    deleting.set_defaults(run=delete_rules)


def _book(url: str, schema: str, use: typing.Callable[[typing.Any], typing.Awaitable[typing.Any]]) -> typing.Any:
    """Run `use(FlowRuleBook)` on a store of its own; a refused rule is a one-line error."""
    from restate_pg.services.rules import FlowRuleBook, InvalidRule

    async def run(store: Store) -> typing.Any:
        return await use(FlowRuleBook(store))

    try:
        return with_store(url, schema, run)
    except InvalidRule as exc:
        raise CLIError(str(exc), EXIT_FAILURE) from None


def _limits_text(limits: typing.Mapping[str, typing.Any]) -> str:
    parts = []
    if "concurrency" in limits:
        parts.append(f"concurrency {limits['concurrency']}")
    if "rate" in limits:
        rate = limits["rate"]
        parts.append(f"rate {rate['tokens']}/{rate['interval_ms']}ms burst {rate['burst']}")
    if "backlog" in limits:
        parts.append(f"backlog {limits['backlog']}")
    return ", ".join(parts) or "no limits"


def list_rules(url: str, schema: str, args: argparse.Namespace) -> int:
    rules = _book(url, schema, lambda book: book.list())
    if args.json:
        print_json(rules)
    elif not rules:
        print("no rules")
    for rule in [] if args.json else rules:
        state = " (disabled)" if rule["disabled"] else ""
        note = f"  # {rule['description']}" if rule.get("description") else ""
        print(f"{rule['pattern']}: {_limits_text(rule['limits'])}{state}  v{rule['version']}{note}")
    return 0


def set_rule(url: str, schema: str, args: argparse.Namespace) -> int:
    limits: typing.Dict[str, typing.Any] = {}
    if args.concurrency is not None:
        limits["concurrency"] = args.concurrency
    if args.rate is not None:
        limits["rate"] = {"tokens": args.rate, "interval_ms": args.per, **({"burst": args.burst} if args.burst is not None else {})}
    if args.backlog is not None:
        limits["backlog"] = args.backlog
    entry = {"pattern": args.pattern, "limits": limits, "description": args.description, "disabled": args.disabled}
    (rule,) = _book(url, schema, lambda book: book.upsert([entry]))
    print(f"rule {rule['pattern']!r}: {_limits_text(rule['limits'])}, version {rule['version']}")
    return 0


def delete_rules(url: str, schema: str, args: argparse.Namespace) -> int:
    deleted = _book(url, schema, lambda book: book.delete([{"pattern": p} for p in args.patterns]))
    for pattern in args.patterns:
        print(f"deleted rule {pattern!r}" if pattern in deleted else f"no rule {pattern!r}")
    return 0 if len(deleted) == len(args.patterns) else EXIT_FAILURE
