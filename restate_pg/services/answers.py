"""What an operator can do to one invocation, and how each outcome is answered, by every transport.

The verbs themselves are `restate_pg.services.operations.Operations`; this module maps each of
their outcomes to the HTTP status and message of Restate's admin API. The admin router, the SQL client and the
`restate-pg invocations` command share this table, so that all give the same answers.
"""

from __future__ import annotations

import dataclasses
import logging
import typing
from dataclasses import dataclass


from restate_pg.core.errors import DatabaseUnavailable
from restate_pg.core.ids import is_invocation_id
from restate_pg.services.http_errors import unavailable
from restate_pg.services import outcomes
from restate_pg.services.gateway import Gateway

logger = logging.getLogger("restate_pg.admin")

NOT_COMPLETED = "the invocation is not completed yet; cancel or kill it first"
NOT_STARTED = "the invocation has not started yet (inboxed or scheduled)"

#: An answer: the HTTP status, and the message (formatted with the outcome's fields).
Reply = typing.Tuple[int, str]

#: Outcomes every operation may have.
_COMMON: typing.Mapping[type, Reply] = {
    outcomes.Missing: (404, "invocation not found"),
    outcomes.AlreadyCompleted: (409, "the invocation is already completed"),
}


@dataclass(frozen=True)
class Operation:
    """One operation: the `Operations` method that performs it and the answer to each outcome."""

    name: str  # the admin path segment and the CLI verb
    summary: str
    method: str
    answers: typing.Mapping[type, Reply]


OPERATIONS: typing.Dict[str, Operation] = {
    op.name: op
    for op in (
        Operation("cancel", "ask an invocation to stop: its handler gets TerminalError 409 at its next await", "cancel", {
            outcomes.Canceled: (200, "canceled: it had not started, and has ended"),
            outcomes.CancelSignalled: (202, "cancellation requested: the handler raises it at its next await"),
        }),
        Operation("kill", "end an invocation now with 409 'killed', and the ones it called, running no more of its code",
                  "kill", {outcomes.Killed: (200, "killed")}),
        Operation("purge", "forget a completed invocation: status, result and journal", "purge", {
            outcomes.Purged: (200, "purged"),
            outcomes.NotCompleted: (409, NOT_COMPLETED),
        }),
        Operation("purge-journal", "forget the journal of a completed invocation, keeping its result", "purge_journal", {
            outcomes.Purged: (200, "journal purged"),
            outcomes.NotCompleted: (409, NOT_COMPLETED),
        }),
        Operation("pause", "stop an invocation until it is resumed", "pause", {
            outcomes.Paused: (202, "pausing: its attempt is stopped and it waits to be resumed"),
            outcomes.AlreadyPaused: (200, "already paused"),
            outcomes.NotStarted: (409, "the invocation is not running (inboxed or scheduled)"),
        }),
        Operation("resume", "run a paused, backing-off or suspended invocation now", "resume", {
            outcomes.Resumed: (200, "resumed"),
            outcomes.AlreadyRunning: (200, "running already"),
            outcomes.NotStarted: (425, NOT_STARTED),
        }),
        Operation("restart-as-new", "run a completed invocation again as a new one, with the same input",
                  "restart_as_new", {
            outcomes.Restarted: (200, "restarted as {new_invocation_id}"),
            outcomes.NotStarted: (425, NOT_STARTED),
            outcomes.NotCompleted: (409, "the invocation is still running; cancel or kill it first"),
            outcomes.WorkflowRun: (422, "restart-as-new is not supported for workflow runs"),
            outcomes.JournalGone: (410, "the journal of the invocation was purged; restart it from 0"),
            outcomes.PrefixPastEnd: (400, "from={prefix} is past the end of the journal (last entry {last_index})"),
            outcomes.PrefixSplitsCommand: (
                400, "the journal up to entry {prefix} holds commands whose results come later; choose another 'from'"),
        }),
    )
}


@dataclass(frozen=True)
class Answer:
    """The outcome of an operation: an HTTP status, a message, and a new invocation id for
    restart-as-new."""

    status: int
    message: str
    new_invocation_id: typing.Optional[str] = None

    @property
    def ok(self) -> bool:
        return self.status < 300


def answer(operation: Operation, outcome: outcomes.Outcome) -> Answer:
    """The answer to `outcome` of `operation`."""
    status, message = {**_COMMON, **operation.answers}[type(outcome)]
    fields = dataclasses.asdict(outcome) if dataclasses.is_dataclass(outcome) else {}
    return Answer(status, message.format(**fields), fields.get("new_invocation_id"))


async def perform(node: Gateway, name: str, invocation_id: str, **options: typing.Any) -> Answer:
    """Perform operation `name` on one invocation; failures become answers, never exceptions."""
    operation = OPERATIONS[name]
    if not is_invocation_id(invocation_id):
        return Answer(400, f"bad invocation id '{invocation_id}'")
    try:
        outcome = await getattr(node.operations, operation.method)(invocation_id, **options)
    except DatabaseUnavailable as exc:
        return Answer(*unavailable(exc))
    except Exception:
        logger.exception("%s of %s failed", name, invocation_id)
        return Answer(500, f"internal error during {name}")
    return answer(operation, outcome)


# -- deployments ------------------------------------------------------------------------------

#: A deployment operation's failure: the HTTP status, the message, and Restate's error code.
DeploymentReply = typing.Tuple[int, str, typing.Optional[str]]

IN_PROCESS_REMOVAL = "restate-pg removes no deployment: stop its workers once its in-flight invocations are 0"


def deployment_reply(outcome: outcomes.Outcome) -> typing.Optional[DeploymentReply]:
    """How a registration, update or removal that failed is answered (None: it did not fail).
    Discovery failures are the request's fault here (400), where Restate answers 500."""
    match outcome:
        case outcomes.InvalidField(field, reason):
            return 400, f"The request field '{field}' is invalid. Reason: {reason}", None
        case outcomes.DiscoveryFailed(message, code):
            return 400, message if code is None else f"[{code}] {message}", code
        case outcomes.ServiceTypeChanged(service):
            return (409, f"[META0006] detected a new service revision for '{service}' changing the service type from "
                    "previous revision. Service type cannot be changed across revisions.", "META0006")
        case outcomes.UnknownDeployment(deployment_id):
            return 404, f"deployment '{deployment_id}' not found", None
        case outcomes.InProcessDeployment(deployment_id):
            return 400, f"deployment '{deployment_id}' is run by restate-pg's workers: it has no uri or headers to change", None
        case outcomes.UriTaken(uri, deployment_id):
            return 409, f"the uri {uri} is registered already, as deployment {deployment_id}", None
        case outcomes.ProtocolVersionsChanged((low, high), (new_low, new_high)):
            return (400, "[META0016] an update deployment operation must provide an endpoint with the same services and "
                    f"handlers. The update tried to change the supported protocol versions from {low}..={high} to "
                    f"{new_low}..={new_high}", "META0016")
    return None
