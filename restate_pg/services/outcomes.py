"""What became of a request to the services: small values, one per domain outcome.

Transports map them to their own answers (the ingress and the admin API to HTTP statuses, the
clients to exceptions, the CLI to messages), so the meaning of an outcome is decided here once
and its wording there. They are frozen dataclasses: equal when their fields are, so tests and
callers compare them (`outcome == Paused()`) or match them (`case Missing():`).
"""

from __future__ import annotations

import typing
from dataclasses import dataclass
from datetime import datetime

from restate_pg.core.records import Failure


@dataclass(frozen=True)
class InvocationResult:
    """The result of a completed invocation, as callers receive it."""

    output: typing.Optional[bytes]
    failure: typing.Optional[Failure]

    @classmethod
    def from_row(cls, row: typing.Mapping[str, typing.Any]) -> "InvocationResult":
        if row["result"] == "failure":
            return cls(None, Failure(row["failure_code"], row["failure_message"] or "", row["failure_metadata"]))
        output = row["output"]
        return cls(None if output is None else bytes(output), None)


class Outcome:
    """Base of every outcome (for type hints: `-> Outcome`)."""

    __slots__ = ()


# -- shared by several requests ---------------------------------------------------------------


@dataclass(frozen=True)
class Missing(Outcome):
    """No invocation has this id (never existed, or purged)."""


@dataclass(frozen=True)
class AlreadyCompleted(Outcome):
    """The invocation has completed: there is nothing left to steer."""


@dataclass(frozen=True)
class NotCompleted(Outcome):
    """The invocation exists and has not completed (it runs, waits, backs off or is paused)."""


@dataclass(frozen=True)
class NotStarted(Outcome):
    """The invocation is inboxed behind an object key or scheduled for later: it never ran."""


# -- submitting and reading results -----------------------------------------------------------


@dataclass(frozen=True)
class Accepted(Outcome):
    """A send created a new invocation; `execution_time` when it is delayed."""

    invocation_id: str
    execution_time: typing.Optional[datetime] = None


@dataclass(frozen=True)
class PreviouslyAccepted(Outcome):
    """A send hit an invocation submitted before (same idempotency key, or a workflow's run)."""

    invocation_id: str


@dataclass(frozen=True)
class Finished(Outcome):
    """A completed invocation's result, with what transports answer beside it: its target (the
    content type of its output) and until when its result is kept (None: not retained)."""

    result: InvocationResult
    service: typing.Optional[str] = None
    handler: typing.Optional[str] = None
    retain_until: typing.Optional[datetime] = None


@dataclass(frozen=True)
class NotReady(Outcome):
    """The invocation exists but has not completed yet (an `output` asked too early)."""


# -- awakeables -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Resolved(Outcome):
    """The awakeable was completed with the value or failure given."""


@dataclass(frozen=True)
class NotResolved(Outcome):
    """The awakeable could not be completed (`reason` from the store: "unknown" for an awakeable
    of an invocation that is gone, or one completed before); accepted all the same, as Restate does."""

    reason: str


@dataclass(frozen=True)
class InvalidAwakeableId(Outcome):
    """The id given is not an awakeable id."""


# -- operator verbs ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Canceled(Outcome):
    """Cancelled before it ever ran: it has ended, with 409 "canceled"."""


@dataclass(frozen=True)
class CancelSignalled(Outcome):
    """Cancellation requested: its handler raises it at its next await."""


@dataclass(frozen=True)
class Killed(Outcome):
    """Ended now with 409 "killed", with the invocations it called or sent to."""


@dataclass(frozen=True)
class Purged(Outcome):
    """Forgotten (the whole invocation, or only its journal for `purge_journal`)."""


@dataclass(frozen=True)
class Paused(Outcome):
    """Paused now: its attempt is stopped and it waits to be resumed."""


@dataclass(frozen=True)
class AlreadyPaused(Outcome):
    """It was paused before."""


@dataclass(frozen=True)
class Resumed(Outcome):
    """It runs again (it was paused, backing off or suspended)."""


@dataclass(frozen=True)
class AlreadyRunning(Outcome):
    """A resume of an invocation that runs already."""


@dataclass(frozen=True)
class Restarted(Outcome):
    """Restarted as a new invocation."""

    new_invocation_id: str


@dataclass(frozen=True)
class WorkflowRun(Outcome):
    """Restart-as-new refused: workflow runs cannot be restarted."""


@dataclass(frozen=True)
class JournalGone(Outcome):
    """Restart-as-new from a journal position refused: the journal was purged."""


@dataclass(frozen=True)
class PrefixPastEnd(Outcome):
    """Restart-as-new refused: `prefix` is past the last journal entry."""

    prefix: int
    last_index: int


@dataclass(frozen=True)
class PrefixSplitsCommand(Outcome):
    """Restart-as-new refused: the journal up to `prefix` holds commands whose results come later."""

    prefix: int


# -- SDK endpoint deployments -----------------------------------------------------------------


@dataclass(frozen=True)
class EndpointDeployment(Outcome):
    """An endpoint deployment as registered (or as a dry run would register it): what Restate's
    `RegisterDeploymentResponse` shows. `result` is Restate's: `created`, `unchanged` (the uri was
    registered already, and nothing was done) or `overwritten` (with force)."""

    id: str
    result: str
    services: typing.Tuple[typing.Mapping[str, typing.Any], ...]
    min_protocol_version: int
    max_protocol_version: int
    sdk_version: typing.Optional[str] = None


@dataclass(frozen=True)
class DiscoveryFailed(Outcome):
    """The endpoint could not be discovered, or its manifest cannot be registered; `message` is
    Restate's, `restate_code` its code."""

    message: str
    restate_code: typing.Optional[str] = None


@dataclass(frozen=True)
class ServiceTypeChanged(Outcome):
    """A service would change type (a service becoming a virtual object, say): refused unless
    the registration allows breaking changes."""

    service: str


@dataclass(frozen=True)
class UnknownDeployment(Outcome):
    """No deployment has this id."""

    deployment_id: str


@dataclass(frozen=True)
class InProcessDeployment(Outcome):
    """The deployment is run by restate-pg's workers: it has no uri, and goes when they stop."""

    deployment_id: str


@dataclass(frozen=True)
class UriTaken(Outcome):
    """Another deployment is registered at this uri."""

    uri: str
    deployment_id: str


@dataclass(frozen=True)
class ProtocolVersionsChanged(Outcome):
    """An update found the endpoint supporting other protocol versions than it registered with."""

    registered: typing.Tuple[int, int]
    discovered: typing.Tuple[int, int]


@dataclass(frozen=True)
class DeploymentUpdated(Outcome):
    """An endpoint deployment's new address or headers (and with overwrite, services) are stored."""

    deployment_id: str


@dataclass(frozen=True)
class DeploymentRemoved(Outcome):
    """The deployment and the services it was the latest of are forgotten."""


@dataclass(frozen=True)
class InvalidField(Outcome):
    """A field of a registration or update is not what it must be (Restate's "invalid field")."""

    field: str
    reason: str


class BacklogFull(Exception):
    """A flow-control backlog rule refused a submission: its scope (or limit key; or, unscoped,
    its service or handler `target`) has as many invocations queued as the rule allows. Nothing
    was written; the client may retry later (HTTP 429 with `Retry-After`)."""

    #: Seconds a client is told to wait before it retries.
    retry_after = 1

    def __init__(self, scope: typing.Optional[str], limit_key: typing.Optional[str], target: str = "") -> None:
        where = target if scope is None else scope if limit_key is None else f"{scope}/{limit_key}"
        super().__init__(f"the backlog of {where} is full: retry later")
        self.scope, self.limit_key = scope, limit_key
