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
        "Flow-control rules by pattern ('*', 'scope', 'scope/key', 'scope/*' ...): concurrency, rate and backlog limits;"
        " or on a service or handler (--service S [--handler H]), which may also hold --per-key, --priority and --debounce-ms.",
    )
    actions = command.add_subparsers(dest="action", metavar="ACTION", required=True, parser_class=Parser)
    listing = actions.add_parser("list", parents=[common], help="list the rules", description="List every rule.")
    listing.add_argument("--json", action="store_true", help="print a JSON array, for scripts")
    listing.set_defaults(run=list_rules)
    setting = actions.add_parser("set", parents=[common], help="create or replace a rule",
                                 description="Create or replace the rule of PATTERN (or of --service/--handler) with the limits given (the others are cleared).")
    setting.add_argument("pattern", metavar="PATTERN", nargs="?", help="'*', 'scope', 'scope/key', 'scope/*', 'scope/key/sub' ...")
    _add_target(setting)
    setting.add_argument("--concurrency", type=int, help="most invocations running at once")
    setting.add_argument("--rate", type=int, metavar="TOKENS", help="most first attempts started per --per")
    setting.add_argument("--per", type=int, default=1000, metavar="MS", help="the rate's interval in ms (default 1000)")
    setting.add_argument("--burst", type=int, help="the rate's bucket size (default: TOKENS)")
    setting.add_argument("--backlog", type=int, help="most invocations queued; more are refused with 429")
    setting.add_argument("--per-key", type=int, metavar="N", help="service/handler rules: most running at once per tenant key (limit key, else object key)")
    setting.add_argument("--priority", type=int, help="service/handler rules: the default priority of their invocations (-1000 to 1000)")
    setting.add_argument("--debounce-ms", type=int, metavar="MS", help="service/handler rules: the window of sends with a debounce key")
    setting.add_argument("--description", help="free text shown with the rule")
    setting.add_argument("--disabled", action="store_true", help="keep the rule but do not apply it")
    setting.set_defaults(run=set_rule)
    deleting = actions.add_parser("delete", parents=[common], help="delete rules", description="Delete the rules of the patterns given.")
    deleting.add_argument("patterns", metavar="PATTERN", nargs="*")
    _add_target(deleting)
    deleting.set_defaults(run=delete_rules)


def _add_target(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--service", help="a rule on this service (instead of a PATTERN of scopes)")
    parser.add_argument("--handler", dest="target_handler", help="with --service: a rule on this handler of it")


def _selected(args: argparse.Namespace, patterns: typing.List[str]) -> typing.List[typing.Dict[str, typing.Any]]:
    """The rules the command names: its PATTERNs, or the --service/--handler target (not both)."""
    if args.target_handler is not None and args.service is None:
        raise CLIError("--handler needs --service", EXIT_FAILURE)
    if (args.service is None) == (not patterns):
        raise CLIError("name the rule: a PATTERN of scopes, or --service [--handler] (not both)", EXIT_FAILURE)
    if args.service is None:
        return [{"pattern": pattern} for pattern in patterns]
    from restate_pg.services.rules import InvalidRule, parse_target

    try:  # stored under its pattern, service:<service>[/<handler>]
        target = parse_target({"service": args.service, **({"handler": args.target_handler} if args.target_handler is not None else {})})
    except InvalidRule as exc:
        raise CLIError(str(exc), EXIT_FAILURE) from None
    return [{"pattern": target["pattern"]}]


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
    for name, label in (("concurrency_per_key", "per key"), ("priority", "priority"), ("debounce_ms", "debounce ms")):
        if name in limits:
            parts.append(f"{label} {limits[name]}")
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
    for name, value in (("concurrency_per_key", args.per_key), ("priority", args.priority), ("debounce_ms", args.debounce_ms)):
        if value is not None:
            limits[name] = value
    (named,) = _selected(args, [] if args.pattern is None else [args.pattern])
    entry = {**named, "limits": limits, "description": args.description, "disabled": args.disabled}
    (rule,) = _book(url, schema, lambda book: book.upsert([entry]))
    print(f"rule {rule['pattern']!r}: {_limits_text(rule['limits'])}, version {rule['version']}")
    return 0


def delete_rules(url: str, schema: str, args: argparse.Namespace) -> int:
    entries = _selected(args, args.patterns)
    patterns = [entry["pattern"] for entry in entries]
    deleted = _book(url, schema, lambda book: book.delete(entries))
    for pattern in patterns:
        print(f"deleted rule {pattern!r}" if pattern in deleted else f"no rule {pattern!r}")
    return 0 if len(deleted) == len(patterns) else EXIT_FAILURE
