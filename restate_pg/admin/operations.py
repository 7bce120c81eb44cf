"""What an operator can do to one invocation, and how each outcome is answered.

The admin router and the `restate-pg invocations` command share this table, so that both give
Restate's admin API status codes and the same messages.
"""

from __future__ import annotations

import logging
import typing
from dataclasses import dataclass


from restate_pg.core.errors import DatabaseUnavailable
from restate_pg.core.ids import is_invocation_id
from restate_pg.http_errors import unavailable
from restate_pg.worker.engine import Engine, RestartRefused

logger = logging.getLogger("restate_pg.admin")

NOT_COMPLETED = "the invocation is not completed yet; cancel or kill it first"
NOT_STARTED = "the invocation has not started yet (inboxed or scheduled)"

#: Outcomes every operation may have.
_COMMON: typing.Mapping[str, typing.Tuple[int, str]] = {
    "missing": (404, "invocation not found"),
    "completed": (409, "the invocation is already completed"),
}


@dataclass(frozen=True)
class Operation:
    """One operation: the engine method that performs it and the answer to each of its outcomes."""

    name: str  # the admin path segment and the CLI verb
    summary: str
    method: str
    answers: typing.Mapping[str, typing.Tuple[int, str]]


OPERATIONS: typing.Dict[str, Operation] = {
    op.name: op
    for op in (
        Operation("cancel", "ask an invocation to stop: its handler gets TerminalError 409 at its next await", "cancel_invocation", {
            "canceled": (200, "canceled: it had not started, and has ended"),
            "signalled": (202, "cancellation requested: the handler raises it at its next await"),
        }),
        Operation("kill", "end an invocation now with 409 'killed', and the ones it called, running no more of its code",
                  "kill_invocation", {"killed": (200, "killed")}),
        Operation("purge", "forget a completed invocation: status, result and journal", "purge_invocation", {
            "purged": (200, "purged"),
            "running": (409, NOT_COMPLETED),
        }),
        Operation("purge-journal", "forget the journal of a completed invocation, keeping its result", "purge_journal", {
            "purged": (200, "journal purged"),
            "running": (409, NOT_COMPLETED),
        }),
        Operation("pause", "stop an invocation until it is resumed", "pause_invocation", {
            "paused": (202, "pausing: its attempt is stopped and it waits to be resumed"),
            "already": (200, "already paused"),
            "pending": (409, "the invocation is not running (inboxed or scheduled)"),
        }),
        Operation("resume", "run a paused, backing-off or suspended invocation now", "resume_invocation", {
            "resumed": (200, "resumed"),
            "running": (200, "running already"),
            "pending": (425, NOT_STARTED),
        }),
        Operation("restart-as-new", "run a completed invocation again as a new one, with the same input",
                  "restart_invocation", {}),
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


async def perform(engine: Engine, name: str, invocation_id: str, **options: typing.Any) -> Answer:
    """Perform operation `name` on one invocation; failures become answers, never exceptions."""
    operation = OPERATIONS[name]
    if not is_invocation_id(invocation_id):
        return Answer(400, f"bad invocation id '{invocation_id}'")
    try:
        outcome = await getattr(engine, operation.method)(invocation_id, **options)
    except RestartRefused as refused:
        return Answer(refused.status, refused.message)
    except DatabaseUnavailable as exc:
        return Answer(*unavailable(exc))
    except Exception:
        logger.exception("%s of %s failed", name, invocation_id)
        return Answer(500, f"internal error during {name}")
    if name == "restart-as-new":
        return Answer(200, f"restarted as {outcome}", new_invocation_id=outcome)
    status, message = {**_COMMON, **operation.answers}[outcome]
    return Answer(status, message)
