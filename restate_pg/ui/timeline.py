"""An invocation's journal as the UI's timeline: the rows of `journal` in stored order, each
command with the notification that completed it (and how long that took), calls with their
callee, sleeps with their wake-up time, failures with their error.

Pure: rows in, entries out, so the shape is tested without a browser.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass, field
from datetime import datetime

from restate_pg.ui.pages import decoded

#: Notification types as the UI names them (a cancel or an awakeable arrive as signals).
_NOTIFICATION_NAMES = {"Awakeable": "Signal (awakeable)", "Cancel": "Signal (cancel)"}


@dataclass
class Entry:
    """One journal row as the timeline shows it."""

    index: int
    kind: str  # "command" | "notification"
    type: str
    name: typing.Optional[str]
    command_index: typing.Optional[int]
    completes: typing.Optional[int]
    appended_at: datetime
    value: typing.Tuple[str, str]
    failure: typing.Optional[str]
    sleep_until: typing.Optional[datetime] = None
    callee: typing.Optional[str] = None
    callee_target: typing.Optional[str] = None
    callee_status: typing.Optional[str] = None
    completed_by: typing.Optional[int] = None  # the index of the notification that completed it
    completed_at: typing.Optional[datetime] = None
    completed: bool = False
    params: typing.Dict[str, typing.Any] = field(default_factory=dict)

    @property
    def target_label(self) -> str:
        return self.callee_target or ""


def _failure(row: typing.Mapping[str, typing.Any]) -> typing.Optional[str]:
    if row["failure_code"] is None and row["failure_message"] is None:
        return None
    return f"[{row['failure_code']}] {row['failure_message'] or ''}".strip()


def timeline(rows: typing.Sequence[typing.Mapping[str, typing.Any]]) -> typing.List[Entry]:
    """The entries of `rows` (journal rows ordered by index), commands linked to their completion."""
    entries: typing.List[Entry] = []
    commands: typing.Dict[int, Entry] = {}
    for row in rows:
        params = dict(row["params"] or {})
        is_command = row["command_index"] is not None
        entry = Entry(
            index=row["index"], kind="command" if is_command else "notification",
            type=row["entry_type"] if is_command else _NOTIFICATION_NAMES.get(row["entry_type"], row["entry_type"]),
            name=row["name"], command_index=row["command_index"], completes=row["completes"],
            appended_at=row["appended_at"], value=decoded(row["value"]), failure=_failure(row),
            sleep_until=row["sleep_wakeup_at"], params=params, completed=bool(row["completed"]) or not is_command,
        )
        if is_command and row["entry_type"] in ("Call", "OneWayCall"):
            entry.callee = params.get("invocation_id")
            service, key, handler = params.get("service"), params.get("key"), params.get("handler")
            if service and handler:
                entry.callee_target = f"{service}/{key}/{handler}" if key is not None else f"{service}/{handler}"
        if is_command:
            commands[row["command_index"]] = entry
            if row["completed"]:  # completed in the same row (a run's result, a state read)
                entry.completed_at = row["appended_at"]
        elif row["completes"] is not None and row["completes"] in commands:
            command = commands[row["completes"]]
            command.completed, command.completed_by, command.completed_at = True, row["index"], row["appended_at"]
        entries.append(entry)
    return entries


def callee_ids(entries: typing.Iterable[Entry]) -> typing.List[str]:
    return [entry.callee for entry in entries if entry.callee]
