"""Invocations as the ingress and the workers see them: creating one, reading its status and
result, and loading what a new attempt starts from (its row, journal, mailbox and state)."""

from __future__ import annotations

import typing

from restate_pg.core.records import (
    Failure,
    InvocationRecord,
    JournalRow,
    LoadedInvocation,
    MailboxItem,
    Submission,
    Submitted,
)
from restate_pg.store import codec
from restate_pg.store.gateway import StorePart
from restate_pg.store.rows import Row


def failure_of(row: Row) -> typing.Optional[Failure]:
    """The failure of a row with `failure_code`, `failure_message`, `failure_metadata` columns."""
    if row["failure_code"] is None:
        return None
    return Failure(row["failure_code"], row["failure_message"] or "", row["failure_metadata"])


def _bytes(value: typing.Optional[typing.Any]) -> typing.Optional[bytes]:
    return None if value is None else bytes(value)


def invocation_record(row: Row) -> InvocationRecord:
    return InvocationRecord(
        id=row["id"], service=row["service"], handler=row["handler"], key=row["key"], input=bytes(row["input"]),
        headers=row["headers"] or {}, idempotency_key=row["idempotency_key"], caller_id=row["caller_id"],
        caller_command=row["caller_command"], status=row["status"],
        scope=row.get("scope"), limit_key=row.get("limit_key"),
    )


def journal_row(row: Row) -> JournalRow:
    return JournalRow(
        index=row["index"], command_index=row["command_index"], completes=row["completes"],
        entry_type=row["entry_type"], name=row["name"], params=row["params"], completed=row["completed"],
        value=_bytes(row["value"]), failure=failure_of(row), sleep_wakeup_at=row["sleep_wakeup_at"],
        message=_bytes(row["message"]),
    )


def mailbox_item(row: Row) -> MailboxItem:
    return MailboxItem(row["seq"], row["command_index"], _bytes(row["value"]), failure_of(row), row["signal_name"],
                       row["created_at"])


class Invocations(StorePart):
    """Submitting invocations, their status and results, and loading claimed ones."""

    async def submit(self, sub: Submission) -> Submitted:
        """Create one invocation (`submit_invocation`), taking the object key's lock if needed."""
        started, db_now = await self._db.apply({"submit": codec.submission_doc(sub)})
        return codec.decode_submitted(sub, started, db_now)

    async def get_invocation(self, invocation_id: str) -> typing.Optional[typing.Dict[str, typing.Any]]:
        return await self._db.first(self._db.q.GET_INVOCATION, {"id": invocation_id})

    async def wait_for(self, invocation_id: str, waiter: str) -> typing.Optional[typing.Dict[str, typing.Any]]:
        """Register `waiter` to be told of the result (`wait_for_invocation`); returns the row."""
        return await self._db.first(self._db.q.WAIT_FOR_INVOCATION, {"id": invocation_id, "waiter": waiter})

    async def load(self, ids: typing.Sequence[str]) -> typing.Dict[str, LoadedInvocation]:
        """Invocation rows, journals and mailboxes of freshly claimed invocations, in one round trip."""
        q, params = self._db.q, {"ids": list(ids)}
        inv_rows, jr_rows, mb_rows = await self._db.transaction(
            [(q.LOAD_INVOCATIONS, params), (q.LOAD_JOURNALS, params), (q.LOAD_MAILBOXES, params)]
        )
        loaded: typing.Dict[str, LoadedInvocation] = {}
        for row in inv_rows or []:
            record = invocation_record(row)
            loaded[record.id] = LoadedInvocation(record, [], [])
        for row in jr_rows or []:
            target = loaded.get(row["invocation_id"])
            if target is not None:
                target.journal.append(journal_row(row))
        for row in mb_rows or []:
            target = loaded.get(row["invocation_id"])
            if target is not None:
                target.mailbox.append(mailbox_item(row))
        return loaded

    async def read_mailbox(self, invocation_id: str, after: int) -> typing.Tuple[typing.Optional[int], typing.List[MailboxItem]]:
        """The wake-up counter and notifications newer than `after` (`read_mailbox`)."""
        rows = await self._db.rows(self._db.q.READ_MAILBOX, {"id": invocation_id, "after": after})
        if not rows:
            return None, []
        return rows[0]["wakeups"], [mailbox_item(row) for row in rows if row["seq"] is not None]

    async def load_state(self, service: str, key: str) -> typing.Dict[str, bytes]:
        rows = await self._db.rows(self._db.q.LOAD_STATE, {"service": service, "key": key})
        return {row["name"]: bytes(row["value"]) for row in rows}
