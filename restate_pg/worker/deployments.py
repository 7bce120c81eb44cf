"""Which deployments' invocations a worker resumes, beyond its own, and what it says of those nobody does.

Two duties, both off the claim path (a claim stays one statement whatever they find):

- In development (`restate-pg dev`, `take_over=True`), a worker lets its deployment resume the
  unfinished invocations of every other one when it starts: an edit derives a new deployment, and
  the invocations in flight before the restart should continue on the new code, as Restate's dev
  loop does when an endpoint is registered again.
- Everywhere, at start and at each housekeeping round, it looks for invocations pinned to a
  deployment that no registered worker runs or resumes, and warns when what it finds changes:
  each deployment, its count, and the command that releases them (see `services.deployments`).
"""

from __future__ import annotations

import typing

from restate_pg.observability import logs
from restate_pg.services.deployments import stranded_messages

if typing.TYPE_CHECKING:
    from restate_pg.worker.engine import Engine

logger = logs.internal_logger("restate_pg.worker")


class Deployments:
    """A worker's view of the other deployments."""

    def __init__(self, engine: "Engine", take_over: bool = False) -> None:
        self.engine = engine
        self.take_over = take_over
        #: What the last check found, {deployment: invocations}; a warning is logged when it changes.
        self.stranded: typing.Dict[str, int] = {}

    async def joined(self) -> None:
        """The worker's deployment is registered: in development, take the others' invocations over
        (before the worker reads which deployments it resumes)."""
        if not self.take_over:
            return
        engine = self.engine
        taken = await engine.store.take_over_deployments(engine.deployment_id)
        if taken:
            total = sum(count for _, count in taken)
            names = ", ".join(deployment for deployment, _ in taken)
            logger.info(
                "%d in-flight invocation(s) of earlier deployment(s) %s continue on this code (deployment %s); "
                "one whose journaled steps the edit changed fails its replay with a journal mismatch (570) "
                "and is retried", total, names, engine.deployment_id)

    async def check(self) -> None:
        """Warn about invocations no live worker can resume, when what is stranded changed."""
        engine = self.engine
        stranded = dict(await engine.store.stranded_invocations())
        if stranded == self.stranded:
            return
        self.stranded = stranded
        if not stranded:
            logger.info("no invocation waits for a deployment without a live worker any more")
            return
        for message in stranded_messages(stranded, engine.deployment_id, engine.deployments[1:], engine.schema):
            logger.warning(message)
