"""`restate-pg deployments register|describe|remove`: SDK endpoints, registered as Restate's CLI
registers them, but straight into the database (no admin API needs to run).

`register URI` discovers the endpoint (`GET URI/discover`, over HTTP/2 cleartext unless
`--use-http1.1`), then stores it and its services; a uri registered before is left as it is
unless `--force`. Failures are Restate's messages on one line: exit status 2 for a uri or header
in the wrong form, 1 for everything else (unreachable, a bad manifest, a service changing type).
"""

from __future__ import annotations

import argparse
import typing

import orjson

from restate_pg.cli.errors import EXIT_FAILURE, EXIT_USAGE, CLIError
from restate_pg.cli.output import print_json
from restate_pg.cli.store import with_store
from restate_pg.core.hints import work_channel
from restate_pg.services import outcomes
from restate_pg.services.answers import deployment_reply
from restate_pg.services.deployments import Endpoints
from restate_pg.store.driver import Store


def add_endpoint_commands(commands: typing.Any, parents: typing.Sequence[argparse.ArgumentParser]) -> None:
    """The `register`, `describe` and `remove` subcommands of `restate-pg deployments`."""
    register = commands.add_parser(
        "register", parents=list(parents), help="discover an SDK endpoint and register its services",
        description="Ask the SDK endpoint at URI what it serves (GET URI/discover) and register it as a deployment, "
        "as `restate deployments register URI` does: its services become the latest revisions.")
    register.add_argument("uri", metavar="URI", help="the endpoint's base uri, e.g. http://localhost:9080")
    register.add_argument("--use-http1.1", dest="use_http_11", action="store_true",
                          help="discover (and invoke) over HTTP/1.1 instead of HTTP/2 cleartext")
    register.add_argument("--header", "--extra-header", dest="headers", action="append", default=[], metavar="NAME:VALUE",
                          help="a header sent with every request to the endpoint (NAME:VALUE or NAME=VALUE; repeatable)")
    register.add_argument("--force", action="store_true",
                          help="overwrite the deployment already registered at URI (implies --breaking)")
    register.add_argument("--breaking", action="store_true", help="allow services to change type")
    register.add_argument("--dry-run", action="store_true", help="discover and check, but register nothing")
    register.add_argument("--json", action="store_true", help="print Restate's registration answer as JSON")
    register.set_defaults(run=register_endpoint)

    describe = commands.add_parser("describe", parents=list(parents), help="show one deployment and its services",
                                   description="Show a deployment: where it is reached, and its services' metadata.")
    describe.add_argument("deployment", metavar="DEPLOYMENT")
    describe.set_defaults(run=describe_deployment)

    remove = commands.add_parser(
        "remove", parents=list(parents), help="forget an SDK endpoint deployment",
        description="Forget an SDK endpoint deployment and the services it is the latest of. Invocations pinned to "
        "it would be left without their code: it must have none in flight, unless --force.")
    remove.add_argument("deployment", metavar="DEPLOYMENT")
    remove.add_argument("--force", action="store_true", help="remove it even with invocations in flight")
    remove.set_defaults(run=remove_deployment)


def parse_header(text: str) -> typing.Tuple[str, str]:
    """`NAME:VALUE` (or Restate's CLI's `NAME=VALUE`): split at the first of either."""
    cuts = [i for i in (text.find(":"), text.find("=")) if i > 0]
    if not cuts:
        raise CLIError(f"bad --header {text!r}: expected NAME:VALUE")
    cut = min(cuts)
    return text[:cut].strip(), text[cut + 1:].strip()


def _fail(outcome: outcomes.Outcome) -> CLIError:
    reply = deployment_reply(outcome)
    status, message, _ = reply if reply is not None else (500, f"unexpected outcome {type(outcome).__name__}", None)
    exit_code = EXIT_USAGE if isinstance(outcome, outcomes.InvalidField) else EXIT_FAILURE
    return CLIError(" ".join(message.split()), exit_code=exit_code)  # one line


def register_endpoint(url: str, schema: str, args: argparse.Namespace) -> int:
    headers = dict(parse_header(text) for text in args.headers)

    async def register(store: Store) -> outcomes.Outcome:
        return await Endpoints(store, work_channel(schema)).register(
            args.uri, headers, use_http_11=args.use_http_11, force=args.force, breaking=args.breaking,
            dry_run=args.dry_run)

    outcome = with_store(url, schema, register)
    if not isinstance(outcome, outcomes.EndpointDeployment):
        raise _fail(outcome)
    if args.json:
        print_json({"id": outcome.id, "result": outcome.result, "services": list(outcome.services),
                    "min_protocol_version": outcome.min_protocol_version,
                    "max_protocol_version": outcome.max_protocol_version, "sdk_version": outcome.sdk_version})
        return 0
    done = {"created": "registered", "overwritten": "registered again (overwritten)",
            "unchanged": "is registered already (--force to overwrite it)"}[outcome.result]
    prefix = "dry run: nothing registered; " if args.dry_run else ""
    print(f"{prefix}deployment {outcome.id} at {args.uri} {done}")
    for doc in outcome.services:
        handlers = ", ".join(h["name"] for h in doc.get("handlers", []))
        print(f"  {doc['name']} ({doc['ty']}, revision {doc.get('revision', 1)}): {handlers}")
    return 0


def describe_deployment(url: str, schema: str, args: argparse.Namespace) -> int:
    rows = with_store(url, schema, lambda store: store.list_deployments(args.deployment))
    if not rows:
        raise CLIError(f"deployment '{args.deployment}' not found (see `restate-pg deployments list`)", exit_code=EXIT_FAILURE)
    row = rows[0]
    print_json({
        "id": row["id"], "uri": row["uri"], "protocol_mode": row["protocol_mode"],
        "http_version": None if row["uri"] is None else ("HTTP/1.1" if row["use_http_11"] else "HTTP/2.0"),
        "min_protocol_version": row["min_protocol_version"], "max_protocol_version": row["max_protocol_version"],
        "additional_headers": row["additional_headers"], "sdk_version": row["sdk_version"],
        "created_at": row["created_at"], "workers": row["workers"], "in_flight": row["in_flight"],
        "services": orjson.loads(orjson.dumps(row["services"])),
    })
    return 0


def remove_deployment(url: str, schema: str, args: argparse.Namespace) -> int:
    async def remove(store: Store) -> outcomes.Outcome:
        rows = await store.list_deployments(args.deployment)
        if rows and rows[0]["uri"] is not None and rows[0]["in_flight"] and not args.force:
            raise CLIError(f"deployment {args.deployment} has {rows[0]['in_flight']} invocation(s) in flight: they would "
                           "be left without their code; let them finish, or pass --force", exit_code=EXIT_FAILURE)
        return await Endpoints(store, work_channel(schema)).remove(args.deployment)

    outcome = with_store(url, schema, remove)
    if isinstance(outcome, outcomes.InProcessDeployment):
        raise CLIError(f"deployment {args.deployment} is run by restate-pg's workers: it goes when they stop "
                       "(see `restate-pg deployments list` for its in-flight invocations)", exit_code=EXIT_FAILURE)
    if not isinstance(outcome, outcomes.DeploymentRemoved):
        raise _fail(outcome)
    print(f"deployment {args.deployment} removed")
    return 0
