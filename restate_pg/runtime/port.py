"""`JournalStore`: everything an attempt asks of storage, as a port the runtime depends on.

The runtime replays a handler against its journal and buffers what it writes (`machine.py`); the
few moments it needs storage are listed here and nowhere else: read its mailbox, read the key's
state, read the types waiters declared for the completions it writes, flush a batch fenced by its
lease, and, for a database step, the statements that fence and flush inside the step's own
transaction. The PostgreSQL `Store` (`store/`) implements this port;
`restate_pg.testing.memory` implements it in memory, so that replay, combinators, suspension and
cancellation are tested without a database. The runtime imports no store module: what it knows of
storage is this file.
"""

from __future__ import annotations

import typing

from restate_pg.core.records import Batch, FlushResult, Lease, MailboxItem, Resolution

#: A statement and its named parameters (`%(name)s`), as a database step runs it.
Statement = typing.Tuple[str, typing.Mapping[str, typing.Any]]


class StepStatements(typing.Protocol):
    """How a database step (`ctx.run_in_transaction`) journals in its own transaction: the fence
    it runs first, the flush of the sealed batch it runs last, and how to read that flush's row.

    SQL, because the step's transaction runs on the application's connection; a store without SQL
    cannot run database steps (the in-memory one refuses them)."""

    def fence(self) -> Statement:
        """The statement that takes the attempt's fence (fails when the lease is lost)."""

    def flush(self, batch: Batch) -> Statement:
        """The statement that applies `batch` as `JournalStore.flush` would."""

    def result(self, batch: Batch, row: typing.Sequence[typing.Any]) -> FlushResult:
        """What the committed flush statement's `row` answered for `batch`."""


class JournalStore(typing.Protocol):
    """What an attempt reads and writes; every write goes through `flush`, fenced by the lease."""

    #: Where database steps open their own connection when the handler names no session.
    conninfo: str

    async def read_mailbox(
        self, invocation_id: str, after: int
    ) -> typing.Tuple[typing.Optional[int], typing.List[MailboxItem]]:
        """The invocation's wake-up counter (None if it is gone) and the notifications numbered
        after `after`: results of calls, awakeables, timers fired from outside, the cancel signal."""

    async def load_state(self, service: str, key: str) -> typing.Dict[str, bytes]:
        """The stored state of an object or workflow key (read at most once per attempt)."""

    async def flush(self, lease: Lease, batch: Batch) -> FlushResult:
        """Apply `batch` (journal rows, state, submissions, its outcome...) atomically, if `lease`
        still holds; raises `core.errors.Fenced` otherwise."""

    def step_statements(self, lease: Lease) -> StepStatements:
        """The statements of a database step of the attempt holding `lease`."""

    async def awakeable_schema(self, resolution: Resolution) -> typing.Optional[typing.Dict[str, typing.Any]]:
        """The JSON schema of the type the awakeable's creator declared, if any (checked before
        a handler's resolution is written: `runtime/typed.py`)."""

    async def promise_schemas(self, service: str, key: str, name: str) -> typing.List[typing.Dict[str, typing.Any]]:
        """The JSON schemas of the types the commands waiting for a workflow's promise declared."""

