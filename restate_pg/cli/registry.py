"""`restate-pg services list` and `restate-pg deployments list|compatible`: what workers registered
(`deployments register|describe|remove`, for SDK endpoints: `cli/endpoints.py`).

Upgrading without stopping: each worker runs one deployment (an application version) and resumes
only invocations pinned to it, or to deployments an operator marked compatible with it, so an old
version keeps finishing its in-flight invocations until `deployments list` shows none left.
"""

from __future__ import annotations

import argparse
import typing

from restate_pg.cli.arguments import Commands, Parser, add_operator_command
from restate_pg.cli.endpoints import add_endpoint_commands
from restate_pg.cli.errors import CLIError
from restate_pg.cli.output import print_result
from restate_pg.cli.store import with_store
from restate_pg.core import hints
from restate_pg.core.hints import work_channel
from restate_pg.store.console import run_query
from restate_pg.store.driver import Store
from restate_pg.store.queries import Queries


def add_parser(commands: Commands, common: argparse.ArgumentParser) -> None:
    """`restate-pg services` and `restate-pg deployments`, their subcommands taking the database
    options `common`."""
    services = add_operator_command(commands, "services", "list the registered services", "The services workers registered.")
    add_services_arguments(services, [common], Parser)
    deployments = add_operator_command(
        commands, "deployments", "list deployments, mark them compatible, register SDK endpoints",
        "Deployments (application versions, and SDK endpoints), their in-flight invocations, and which may resume whose.",
    )
    add_deployments_arguments(deployments, [common], Parser)


def add_services_arguments(
    command: argparse.ArgumentParser, parents: typing.Sequence[argparse.ArgumentParser], parser_class: type
) -> None:
    commands = command.add_subparsers(dest="operation", metavar="COMMAND", required=True, parser_class=parser_class)
    listing = commands.add_parser("list", parents=list(parents), help="list the registered services",
                                  description="List the services workers registered, with their handlers and deployment.")
    listing.add_argument("--json", action="store_true", help="print JSON for scripts")
    listing.set_defaults(run=list_services)


def add_deployments_arguments(
    command: argparse.ArgumentParser, parents: typing.Sequence[argparse.ArgumentParser], parser_class: type
) -> None:
    commands = command.add_subparsers(dest="operation", metavar="COMMAND", required=True, parser_class=parser_class)
    listing = commands.add_parser("list", parents=list(parents), help="list deployments with their in-flight invocations",
                                  description="List deployments (application versions), oldest first, with their live "
                                  "workers and in-flight invocations: drain a deployment before switching it off.")
    listing.add_argument("--json", action="store_true", help="print JSON for scripts")
    listing.set_defaults(run=list_deployments)
    compatible = commands.add_parser(
        "compatible", parents=list(parents), help="let a deployment's workers resume other deployments' invocations",
        description="Mark the invocations pinned to OLD deployments as safe to resume with DEPLOYMENT's code "
        "(its workers then take them over), replacing any earlier marking; with no OLD, only its own.")
    compatible.add_argument("deployment", metavar="DEPLOYMENT")
    compatible.add_argument("old", nargs="*", metavar="OLD")
    compatible.set_defaults(run=mark_compatible)
    add_endpoint_commands(commands, parents)


def list_services(url: str, schema: str, args: argparse.Namespace) -> int:
    print_result(run_query(url, schema, Queries(schema).OPERATOR_SERVICES), args.json)
    return 0


def list_deployments(url: str, schema: str, args: argparse.Namespace) -> int:
    print_result(run_query(url, schema, Queries(schema).OPERATOR_DEPLOYMENTS), args.json)
    return 0


def mark_compatible(url: str, schema: str, args: argparse.Namespace) -> int:
    async def mark(store: Store) -> None:
        known = {row["id"] for row in await store.list_deployments()}
        unknown = [d for d in (args.deployment, *args.old) if d not in known]
        if unknown:
            raise CLIError(f"unknown deployment(s): {', '.join(unknown)} (see `restate-pg deployments list`)", exit_code=1)
        await store.mark_compatible(args.deployment, args.old)
        await store.notify(work_channel(schema), hints.SERVICES_CHANGED)  # workers re-read what they may resume

    with_store(url, schema, mark)
    also = ", ".join(args.old) if args.old else "no other deployment"
    print(f"deployment {args.deployment} resumes its own invocations and those of {also}")
    return 0
