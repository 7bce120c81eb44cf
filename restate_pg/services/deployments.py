"""What an operator is told about stranded invocations, in the workers' logs and by the CLI.

An invocation is pinned to the deployment that started it (see the README's "Upgrading without
breaking in-flight invocations"). When no registered worker runs that deployment, or resumes it
(an operator marked it compatible), its invocations wait for ever, showing as `ready` or
`suspended`. Nothing is wrong with them: they need a worker of their code, or an operator's word
that newer code may replay them. Every place that notices says the same thing, with the command
that releases them, so that the one sentence can be searched for.
"""

from __future__ import annotations

import typing

from restate_pg.store.schema import DEFAULT_SCHEMA


def release_command(
    taker: str, stranded: typing.Iterable[str], resumes: typing.Iterable[str] = (), schema: str = DEFAULT_SCHEMA
) -> str:
    """`restate-pg deployments compatible TAKER ...`: the marking replaces the taker's earlier one,
    so the command lists what it resumes already as well as every stranded deployment."""
    old = sorted(dict.fromkeys([*resumes, *stranded]))
    option = "" if schema == DEFAULT_SCHEMA else f" --schema {schema}"
    return f"restate-pg deployments compatible {taker} {' '.join(old)}{option}"


def stranded_messages(
    stranded: typing.Mapping[str, int],
    taker: typing.Optional[str],
    resumes: typing.Sequence[str] = (),
    schema: str = DEFAULT_SCHEMA,
) -> typing.List[str]:
    """One line per stranded deployment: its name, its count, and the way out. `taker` is the
    deployment the command would mark (the worker's own, or the newest with live workers); None
    when no deployment has live workers."""
    def way_out(deployment: str) -> str:
        if taker is None:
            return f"start a worker of {deployment} (no deployment has live workers now)"
        return (f"start a worker of {deployment}, or let deployment {taker} resume them with its code: "
                f"{release_command(taker, stranded, resumes, schema)}")

    return [
        f"{count} invocation(s) wait for deployment {deployment}, which no live worker runs or resumes: "
        f"{way_out(deployment)}"
        for deployment, count in sorted(stranded.items())
    ]
