"""`restate-pg kv get|set|clear SERVICE KEY [STATE_KEY]`: the K/V state of one object key.

Values are shown and written as restate-sdk's default serde stores them, JSON text; `--raw`
writes a value's text as it is. Writes take the object key's lock for their transaction, so they
never interleave with a flush; an invocation holding the key may still overwrite them later, so
change state while no invocation holds the key.
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
import typing

from restate_pg.cli.arguments import Commands, Parser, add_operator_command
from restate_pg.cli.errors import CLIError
from restate_pg.cli.output import print_json, render_table
from restate_pg.cli.store import with_store
from restate_pg.store.console import QueryResult, run_query
from restate_pg.store.driver import Store, state_version
from restate_pg.store.queries import Queries


def add_parser(commands: Commands, common: argparse.ArgumentParser) -> None:
    """`restate-pg kv`, its subcommands taking the database options `common`."""
    command = add_operator_command(
        commands, "kv", "read and change the state of an object key", "The K/V state of virtual objects and workflows."
    )
    add_arguments(command, [common], Parser)


def add_arguments(
    command: argparse.ArgumentParser, parents: typing.Sequence[argparse.ArgumentParser], parser_class: type
) -> None:
    commands = command.add_subparsers(dest="operation", metavar="COMMAND", required=True, parser_class=parser_class)
    get = commands.add_parser("get", parents=list(parents), help="show the state of an object key",
                              description="Show the state of an object key (or one entry of it).")
    set_ = commands.add_parser("set", parents=list(parents), help="write one state entry",
                               description="Write one state entry of an object key.")
    clear = commands.add_parser("clear", parents=list(parents), help="remove one state entry, or all",
                                description="Remove one state entry of an object key, or all of them.")
    for sub in (get, set_, clear):
        sub.add_argument("service", metavar="SERVICE", help="a virtual object or workflow")
        sub.add_argument("key", metavar="KEY", help="the object key (or workflow id)")
    for sub in (get, clear):
        sub.add_argument("name", nargs="?", metavar="STATE_KEY", help="one entry (default: all)")
    set_.add_argument("name", metavar="STATE_KEY", help="the entry to write")
    set_.add_argument("value", metavar="VALUE", help="its value, as JSON (e.g. 42, '\"text\"', '{\"a\": 1}')")
    set_.add_argument("--raw", action="store_true", help="store VALUE's text as it is, not as JSON")
    get.add_argument("--json", action="store_true", help="print JSON for scripts")
    get.set_defaults(run=get_state)
    set_.set_defaults(run=set_state)
    clear.set_defaults(run=clear_state)


def get_state(url: str, schema: str, args: argparse.Namespace) -> int:
    with_store(url, schema, lambda store: _registered(store, args.service))
    result = run_query(url, schema, Queries(schema).OPERATOR_STATE,
                       {"service": args.service, "key": args.key, "name": args.name})
    if args.name is not None and not result.rows:
        raise CLIError(f"{args.service}/{args.key} has no state entry '{args.name}'", exit_code=1)
    entries = [(name, text, bytes(raw)) for name, text, raw in result.rows]
    if args.json:
        described: typing.Dict[str, typing.Any] = {"service": args.service, "key": args.key}
        if args.name is None:  # the version of the whole state, for POST /services/{name}/state
            described["version"] = state_version({name: raw for name, _, raw in entries})
        described["state"] = {name: _decoded(text, raw) for name, text, raw in entries}
        print_json(described)
    else:
        sys.stdout.write(render_table(QueryResult(["state key", "value"], [
            (name, text if text is not None else f"<{len(raw)} bytes, not text>") for name, text, raw in entries])))
    return 0


def _decoded(text: typing.Optional[str], raw: bytes) -> typing.Any:
    """A value as JSON shows it: the JSON it holds, else its text, else its bytes in base64."""
    if text is None:
        return {"base64": base64.b64encode(raw).decode("ascii")}
    try:
        return json.loads(text)
    except ValueError:
        return text


def set_state(url: str, schema: str, args: argparse.Namespace) -> int:
    if not args.raw:
        try:
            json.loads(args.value)
        except ValueError as exc:
            raise CLIError(f"VALUE is not JSON ({exc}); quote text as '\"text\"', or pass --raw") from None
    value = args.value.encode()
    with_store(url, schema, lambda store: _change(store, args, {args.name: value}))
    print(f"{args.service}/{args.key}: set {args.name}")
    return 0


def clear_state(url: str, schema: str, args: argparse.Namespace) -> int:
    if args.name is None:
        with_store(url, schema, lambda store: _change(store, args, {}, replace=True))
        print(f"{args.service}/{args.key}: cleared all state")
    else:
        with_store(url, schema, lambda store: _change(store, args, {args.name: None}))
        print(f"{args.service}/{args.key}: cleared {args.name}")
    return 0


async def _registered(store: Store, service: str) -> None:
    """Refuse a service no worker registered, or one without state."""
    registered = await store.list_services(service)
    if not registered:
        raise CLIError(f"unknown service '{service}' (no worker of this database has registered it)", exit_code=1)
    if registered[0]["ty"] == "service":
        raise CLIError(f"'{service}' is a plain service: it has no state", exit_code=1)


async def _change(store: Store, args: argparse.Namespace, changes: typing.Mapping[str, typing.Optional[bytes]],
                  replace: bool = False) -> None:
    await _registered(store, args.service)
    await store.change_state(args.service, args.key, changes, replace=replace)
