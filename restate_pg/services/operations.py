"""What operators do to one invocation: cancel, kill, purge, pause, resume, restart as new, and
firing its timers (for tests). Each verb returns its domain outcome (`restate_pg.services.outcomes`);
the admin API, the CLI and the clients give it their own answer (see `restate_pg.services.answers`).

The store changes the invocation in one statement; what follows here are the hints that make
the change felt at once: the processes running the invocations it touched are woken or told to
stop their attempt, the caller waiting for a result ended here is told, and workers are hinted
when work became ready.
"""

from __future__ import annotations

import typing

from restate_pg.core.ids import new_invocation_id
from restate_pg.core.records import Failure
from restate_pg.services.outcomes import (
    AlreadyCompleted, AlreadyPaused, AlreadyRunning, Canceled, CancelSignalled, InvocationResult, JournalGone,
    Killed, Missing, NotCompleted, NotStarted, Paused, PrefixPastEnd, PrefixSplitsCommand, Purged, Restarted,
    Resumed, WorkflowRun,
)
from restate_pg.services.signals import Signals
from restate_pg.store.driver import Store

CancelOutcome = typing.Union[Canceled, CancelSignalled, AlreadyCompleted, Missing]
KillOutcome = typing.Union[Killed, AlreadyCompleted, Missing]
PurgeOutcome = typing.Union[Purged, NotCompleted, Missing]
ResumeOutcome = typing.Union[Resumed, AlreadyRunning, NotStarted, AlreadyCompleted, Missing]
PauseOutcome = typing.Union[Paused, AlreadyPaused, NotStarted, AlreadyCompleted, Missing]
RestartOutcome = typing.Union[
    Restarted, Missing, NotStarted, NotCompleted, WorkflowRun, JournalGone, PrefixPastEnd, PrefixSplitsCommand
]

_SIMPLE = {"missing": Missing(), "completed": AlreadyCompleted()}


class Operations:
    """The operator verbs of one process (an admin API, a CLI command, a client's `cancel`)."""

    def __init__(self, store: Store, signals: Signals) -> None:
        self.store = store
        self.signals = signals

    async def cancel(self, invocation_id: str) -> CancelOutcome:
        """Ask an invocation to stop: `Canceled` (it never ran, and has ended), `CancelSignalled`
        (its handler raises at its next await), `AlreadyCompleted` or `Missing`."""
        applied = await self.store.cancel(invocation_id)
        for target, owner in applied.get("woken", ()):
            self.signals.wake(target, owner)
        status = applied["status"]
        if status == "canceled":
            self.signals.tell_waiter(invocation_id, applied.get("waiter"), InvocationResult(None, Failure(409, "canceled")))
            return Canceled()
        if status == "signalled":
            return CancelSignalled()
        return _SIMPLE[status]

    async def kill(self, invocation_id: str) -> KillOutcome:
        """End an invocation now with 409 "killed", and the invocations it called or sent to."""
        applied = await self.store.kill(invocation_id)
        if applied["status"] != "killed":
            return _SIMPLE[applied["status"]]
        for target, owner in applied.get("woken", ()):
            self.signals.wake(target, owner)
        if applied.get("ready"):
            self.signals.hint_work()  # an object key passed to the next invocation in line
        self.signals.tell_waiter(invocation_id, applied.get("waiter"), InvocationResult(None, Failure(409, "killed")))
        self.signals.stop_attempt(invocation_id, self.signals.process_id)
        return Killed()

    async def purge(self, invocation_id: str) -> PurgeOutcome:
        """Forget a completed invocation: its status, result and journal."""
        status, purged = await self.store.purge(invocation_id)
        return Purged() if purged else (Missing() if status is None else NotCompleted())

    async def purge_journal(self, invocation_id: str) -> PurgeOutcome:
        """Forget a completed invocation's journal, keeping its result."""
        status = await self.store.purge_journal(invocation_id)
        return Missing() if status is None else (Purged() if status == "completed" else NotCompleted())

    async def resume(self, invocation_id: str) -> ResumeOutcome:
        """Run a paused, backing-off or suspended invocation now (`AlreadyRunning` if it runs);
        `NotStarted` for one inboxed or scheduled."""
        status, _task_status, resumed = await self.store.resume(invocation_id)
        if status is None:
            return Missing()
        if status == "completed":
            return AlreadyCompleted()
        if status in ("inboxed", "scheduled"):
            return NotStarted()
        if resumed:
            self.signals.hint_work()
            return Resumed()
        return AlreadyRunning()

    async def pause(self, invocation_id: str) -> PauseOutcome:
        """Stop an invocation until it is resumed; `NotStarted` for one inboxed or scheduled."""
        status, task_status, paused, stopped = await self.store.pause(invocation_id)
        if status is None:
            return Missing()
        if status == "completed":
            return AlreadyCompleted()
        if paused:
            if stopped is not None:
                self.signals.stop_attempt(invocation_id, stopped.owner, stopped.epoch)
            return Paused()
        return AlreadyPaused() if task_status == "paused" else NotStarted()

    async def restart_as_new(self, invocation_id: str, prefix: int = 0) -> RestartOutcome:
        """Run a completed invocation again as a new one with the same input and headers,
        replaying its journal up to position `prefix` (0: from scratch)."""
        source = await self.store.restart_source(invocation_id, prefix)
        if source is None:
            return Missing()
        if source["status"] in ("inboxed", "scheduled"):
            return NotStarted()
        if source["status"] != "completed":
            return NotCompleted()
        if source["handler_ty"] == "workflow":
            return WorkflowRun()
        if prefix > 0:
            if source["last_index"] is None:
                return JournalGone()
            if prefix > source["last_index"]:
                return PrefixPastEnd(prefix, source["last_index"])
            if source["uncompleted"]:
                return PrefixSplitsCommand(prefix)
        lock = (source["service"], source["key"] or "") if source["handler_ty"] == "exclusive" else None
        new_id = new_invocation_id(source["key"])
        status, kept = await self.store.restart(invocation_id, new_id, prefix, lock)
        if kept < 0:
            return Missing()
        if status is None:  # its journal was purged since it was checked
            return JournalGone()
        if status == "invoked":
            self.signals.hint_work()
        return Restarted(new_id)

    async def fire_timers(self, invocation_id: typing.Optional[str] = None) -> int:
        """Fire now every pending sleep of `invocation_id` (of every invocation if None), and start
        its delayed invocations, as if their time had come; returns how many fired or started.

        For tests (`restate_pg.testing`): a sleep's completion is delivered like any result, so an
        invocation suspended on it resumes, and one waiting for it in memory, in this process or
        another, continues at once. Only sleeps already journaled (awaited) are fired."""
        fired = await self.store.fire_timers(invocation_id)
        for target, owner, slept in fired:
            if slept:
                self.signals.wake(target, owner)
            else:
                self.signals.hint_work()
        return len(fired)
