"""The operator's verbs on one invocation (cancel, kill, pause, resume, purge, restart) and on
an object key's state, as the admin API, the CLI and the test harness run them."""

from __future__ import annotations

import base64
import hashlib
import typing

from restate_pg.core.records import Lease
from restate_pg.store import codec
from restate_pg.store.gateway import Statement, StorePart
from restate_pg.store.rows import named_rows

#: Names of the columns of the statements that leave them unnamed.
_PURGED = ("status", "purged")
_RESUMED = ("status", "task_status", "resumed")
_FIRED = ("invocation_id", "owner", "slept")
_PAUSED = ("status", "task_status", "paused", "lease_owner", "epoch")
_RESTARTED = ("status", "kept")


def state_version(state: typing.Mapping[str, bytes]) -> str:
    """A version of an object key's whole state: it changes whenever any entry does. Computed as
    Restate computes it, so that Restate's CLI (`restate state patch|clear|edit`), which derives the
    version from the state it read, sends one that matches."""
    digest = hashlib.sha256()
    for index, name in enumerate(sorted(state, key=str.encode)):
        digest.update(index.to_bytes(8, "big") + b"\x01" + name.encode() + b"\x02" + bytes(state[name]) + b"\x03")
    return base64.urlsafe_b64encode(digest.digest()).decode("ascii").rstrip("=")  # as the CLI sends it


def lock_params(service: str, key: str) -> typing.Dict[str, typing.Any]:
    return {"service": service, "key": key}


class Operators(StorePart):
    """One verb, one method; each answers what became of the invocation."""

    async def cancel(self, invocation_id: str) -> codec.StopAnswer:
        """Ask an invocation to stop (`cancel_invocation()`): what became of it, whom to wake."""
        applied, _ = await self._db.apply({"cancel": invocation_id})
        return typing.cast(codec.StopAnswer, applied)

    async def kill(self, invocation_id: str) -> codec.StopAnswer:
        """End an invocation at once with its callees (`kill_invocation()`)."""
        applied, _ = await self._db.apply({"kill": invocation_id})
        return typing.cast(codec.StopAnswer, applied)

    async def purge(self, invocation_id: str) -> typing.Tuple[typing.Optional[str], bool]:
        """Forget a completed invocation (`purge_invocation`): its status before, and whether it went."""
        row = await self._db.first(self._db.q.PURGE_INVOCATION, {"id": invocation_id}, _PURGED)
        assert row is not None
        return row["status"], bool(row["purged"])

    async def resume(self, invocation_id: str) -> typing.Tuple[typing.Optional[str], typing.Optional[str], bool]:
        """Run a paused, backing-off or suspended invocation now (`resume_invocation`)."""
        row = await self._db.first(self._db.q.RESUME_INVOCATION, {"id": invocation_id}, _RESUMED)
        assert row is not None
        return row["status"], row["task_status"], bool(row["resumed"])

    async def fire_timers(self, invocation_id: typing.Optional[str]) -> typing.List[typing.Tuple[str, typing.Optional[str], bool]]:
        """Make pending sleeps and delayed starts due now (`fire_timers`, for tests): per invocation
        touched, its id, the process running it, and whether a sleep of it fired."""
        rows = await self._db.rows(self._db.q.FIRE_TIMERS, {"id": invocation_id}, _FIRED)
        return [(row["invocation_id"], row["owner"], bool(row["slept"])) for row in rows]

    async def pause(
        self, invocation_id: str
    ) -> typing.Tuple[typing.Optional[str], typing.Optional[str], bool, typing.Optional[Lease]]:
        """Stop an invocation until it is resumed (`pause_invocation`): its status, its task's
        status before, whether it was paused now, and the lease of the attempt that was stopped."""
        row = await self._db.first(self._db.q.PAUSE_INVOCATION, {"id": invocation_id}, _PAUSED)
        assert row is not None
        owner = row["lease_owner"]
        stopped = Lease(invocation_id, owner, row["epoch"], 0) if owner is not None else None
        return row["status"], row["task_status"], bool(row["paused"]), stopped

    async def purge_journal(self, invocation_id: str) -> typing.Optional[str]:
        """Forget a completed invocation's journal (`purge_journal`); returns its status."""
        row = await self._db.first(self._db.q.PURGE_JOURNAL, {"id": invocation_id})
        return None if row is None else row["status"]

    async def restart_source(self, invocation_id: str, prefix: int) -> typing.Optional[typing.Dict[str, typing.Any]]:
        """What restarting `invocation_id` with its journal up to `prefix` needs to check."""
        return await self._db.first(self._db.q.RESTART_SOURCE, {"id": invocation_id, "prefix": prefix})

    async def restart(
        self, invocation_id: str, new_id: str, prefix: int, lock: typing.Optional[typing.Tuple[str, str]]
    ) -> typing.Tuple[typing.Optional[str], int]:
        """Create `new_id` re-running completed `invocation_id` with its journal up to `prefix`,
        in one transaction; returns the new invocation's status (None if not created) and the
        number of journal entries kept, or (None, -1) if the old invocation is gone."""
        q, params = self._db.q, {"id": invocation_id, "new_id": new_id, "prefix": prefix}
        statements: typing.List[Statement] = []
        if lock is not None:
            statements.append((q.LOCK_OBJECT_KEY, lock_params(*lock)))
        statements += [(q.RESTART_INVOCATION, params), (q.MARK_RESTARTED, params), (q.COPY_JOURNAL_PREFIX, params)]
        at = len(statements) - 3
        created = (await self._db.transaction(statements, {at: _RESTARTED}))[at]
        if not created:
            return None, -1
        return created[0]["status"], int(created[0]["kept"])

    async def purge_expired(self, limit: int = 1000) -> int:
        """Forget up to `limit` completed invocations past their retention (`purge_expired`)."""
        return int(await self._db.scalar(self._db.q.PURGE_EXPIRED, {"limit": limit}))

    async def describe_invocation(self, invocation_id: str) -> typing.Optional[typing.Dict[str, typing.Any]]:
        """The invocation's row of `sys_invocation`, or None."""
        return await self._db.first(self._db.q.OPERATOR_DESCRIBE_INVOCATION, {"id": invocation_id})

    async def journal_entries(self, invocation_id: str) -> typing.List[typing.Dict[str, typing.Any]]:
        """The invocation's rows of `sys_journal`, in order (`test_journal`)."""
        return await self._db.rows(self._db.q.TEST_JOURNAL, {"id": invocation_id})

    async def change_state(
        self,
        service: str,
        key: str,
        changes: typing.Mapping[str, typing.Optional[bytes]],
        *,
        replace: bool = False,
        expected_version: typing.Optional[str] = None,
    ) -> bool:
        """Write state entries of an object key (None clears one), or with `replace` make them the
        key's whole state; all or nothing. With `expected_version`, only if the state still has
        that version (`state_version`); returns False when it did not."""
        q = self._db.q
        async with self._db.connection() as conn, conn.transaction():
            await conn.execute(q.LOCK_OBJECT_KEY, lock_params(service, key))
            if expected_version is not None:
                cur = conn.cursor(row_factory=named_rows())
                await cur.execute(q.LOAD_STATE, {"service": service, "key": key})
                state = {row["name"]: bytes(row["value"]) for row in await cur.fetchall()}
                if state_version(state) != expected_version.rstrip("="):
                    return False
            if replace:
                await conn.execute(q.CLEAR_STATE_OF_KEY, {"service": service, "key": key, "name": None})
            for name, value in changes.items():
                params = {"service": service, "key": key, "name": name, "value": value}
                await conn.execute(q.CLEAR_STATE_OF_KEY if value is None else q.SET_STATE_ENTRY, params)
        return True
