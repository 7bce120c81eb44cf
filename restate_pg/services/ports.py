"""What the services need from the worker of their process, when it has one.

A process that runs handlers starts the invocations it submits itself, without a claim round
trip (the ingress fast path: the lease is written with the submission, or, for a caller that waits
here, the row is written with the attempt's first flush). The services reach that worker only
through this Protocol, so they never import it, and a process that runs no handlers (an ingress
with `run_handlers=False`, the SQL client, the CLI) simply has none.
"""

from __future__ import annotations

import typing

from restate_pg.core.records import Submission


class LocalWorker(typing.Protocol):
    """The worker running in this process (implemented by `restate_pg.worker.engine.Engine`)."""

    worker_id: str
    deployment_id: str

    def reserve_local(self, sub: Submission) -> bool:
        """Take a slot to run `sub` here right after it is submitted (for a send, a place in the run
        queue when no slot is free), setting its owner (this worker) and the deployment that pins
        it; False if this process does not host or drive its handler or has no room (it is then
        submitted for any worker)."""

    def release_slot(self, invocation_id: str) -> None:
        """Give back the slot (or run-queue place) `reserve_local` took for `invocation_id`, a
        submission that will not run here."""

    def start_submitted(self, sub: Submission, state: typing.Optional[typing.Dict[str, bytes]] = None) -> None:
        """Run `sub` (its slot reserved), submitted and leased to this worker at epoch 1."""

    def start_unrecorded(self, sub: Submission) -> None:
        """Run `sub` (its slot reserved) before anything of it is written: its row is created by
        the attempt's first flush. Only for a caller waiting in this process."""

    def is_unrecorded(self, invocation_id: str) -> bool:
        """Whether `invocation_id` runs here and its row is not written yet: it exists, although
        the database does not know it."""

    def wake_attempt(self, invocation_id: str) -> None:
        """Its mailbox has news: the attempt running it here, if any, reads it."""

    def stop_attempt(self, invocation_id: str, epoch: typing.Optional[int] = None) -> None:
        """Its lease was taken away: end the attempt running it here (the one at `epoch`, or any)."""
