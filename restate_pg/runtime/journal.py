"""The recorded journal of an invocation, as an attempt replays it.

Commands are numbered in the order the handler issues them (`command_index`) and matched against
the recording by that number: a different command at the same number is a non-determinism error.
Rows are written in a separate order (`index`, the journal position), because a `ctx.run` entry is
written when its result is known, and notifications (timer fired, call answered) are appended when
they arrive. Completion positions decide races on replay: of two completed futures, the one whose
completion has the lower position completed first.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass

from restate_pg.api.errors import TerminalError
from restate_pg.core.records import Failure, JournalRow

#: Restate's error code for a journal mismatch.
JOURNAL_MISMATCH = 570


class NonDeterminismError(Exception):
    """The handler took a different path than the recorded one (Restate error 570); retried."""

    status_code = JOURNAL_MISMATCH

    def __init__(self, message: str, command_index: int) -> None:
        super().__init__(message)
        self.message = message
        self.command_index = command_index


@dataclass(frozen=True)
class Result:
    """The outcome of a command: a value, or a terminal failure."""

    value: typing.Optional[bytes]
    failure: typing.Optional[Failure] = None
    position: int = 0  # journal position of the completion, for ordering races

    def raise_for_failure(self) -> None:
        if self.failure is not None:
            raise TerminalError(self.failure.message, self.failure.code, self.failure.metadata)


def describe(entry_type: str, name: typing.Optional[str], params: typing.Optional[dict]) -> str:
    detail = dict(params or {})
    detail.pop("invocation_id", None)
    detail.pop("schema", None)  # a declared type's JSON schema: recorded, never matched
    if name:
        detail = {"name": name, **detail}
    inner = ", ".join(f"{k}={v!r}" for k, v in detail.items())
    return f"{entry_type}({inner})"


class RecordedJournal:
    """Commands and completions loaded from the database for one attempt."""

    def __init__(self, rows: typing.Sequence[JournalRow]) -> None:
        self.commands: typing.Dict[int, JournalRow] = {}
        self.results: typing.Dict[int, Result] = {}
        #: Named signals received, by name (rows that are neither a command nor a completion).
        self.signals: typing.Dict[str, Result] = {}
        self.last_index = 0
        for row in rows:
            self.last_index = max(self.last_index, row.index)
            if row.entry_type == "Signal" and row.command_index is None and row.completes is None:
                name = (row.params or {}).get("signal_name")
                if isinstance(name, str) and name not in self.signals:
                    self.signals[name] = Result(row.value, row.failure, row.index)
            elif row.command_index is not None:
                self.commands[row.command_index] = row
                if row.completed:
                    self.results[row.command_index] = Result(row.value, row.failure, row.index)
            elif row.completes is not None and row.completes not in self.results:
                self.results[row.completes] = Result(row.value, row.failure, row.index)
        self.last_command = max(self.commands, default=0)

    def match(
        self, command_index: int, entry_type: str, name: typing.Optional[str], params: typing.Optional[dict]
    ) -> typing.Optional[JournalRow]:
        """The recorded command at `command_index`, checked against what the handler does now."""
        recorded = self.commands.get(command_index)
        if recorded is None:
            if command_index < self.last_command and entry_type != "Run":
                # Only a ctx.run can be missing below the last recorded command: it is written
                # when its result is known. Anything else is a different code path.
                raise NonDeterminismError(
                    _mismatch(command_index, "nothing", describe(entry_type, name, params)), command_index
                )
            return None
        if recorded.entry_type != entry_type or not _same(recorded, name, params):
            raise NonDeterminismError(
                _mismatch(
                    command_index,
                    describe(recorded.entry_type, recorded.name, recorded.params),
                    describe(entry_type, name, params),
                ),
                command_index,
            )
        return recorded


def _same(recorded: JournalRow, name: typing.Optional[str], params: typing.Optional[dict]) -> bool:
    if (recorded.name or None) != (name or None):
        return False
    ours = {k: v for k, v in (params or {}).items() if k != "invocation_id"}
    theirs = {k: v for k, v in (recorded.params or {}).items() if k in ours}
    return ours == theirs


def _mismatch(command_index: int, recorded: str, current: str) -> str:
    return (
        "Found a mismatch between the code paths taken during the previous execution and the paths "
        "taken during this execution.\nThis typically happens when some parts of the code are "
        "non-deterministic.\n"
        f" - The previous execution ran and recorded the following: '{recorded}' (index '{command_index}')\n"
        f" - The current execution attempts to perform the following: '{current}'"
    )
