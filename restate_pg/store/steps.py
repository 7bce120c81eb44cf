"""The statements of a database step (`ctx.run_in_transaction`) for the runtime's `JournalStore`
port (`runtime/port.py`): the fence it takes first and the `flush()` it runs last, in the step's
own transaction on the application's connection, and how that flush's row is read back.

Here because they are SQL and the flush codec (`codec.py`): the runtime only carries them to the binding.
"""

from __future__ import annotations

import typing
from datetime import datetime, timezone

from restate_pg.core.records import Batch, FlushResult, Lease
from restate_pg.store.codec import decode_results, encode_requests, flush_request, flush_result
from restate_pg.store.queries import Queries

Statement = typing.Tuple[str, typing.Mapping[str, typing.Any]]


class SqlStepStatements:
    """`runtime.port.StepStatements` for the PostgreSQL store, for the attempt holding `lease`."""

    def __init__(self, queries: Queries, lease: Lease) -> None:
        self._q = queries
        self._lease = lease

    def fence(self) -> Statement:
        lease = self._lease
        return self._q.FENCE, {"id": lease.invocation_id, "owner": lease.owner, "epoch": lease.epoch}

    def flush(self, batch: Batch) -> Statement:
        return self._q.FLUSH_IN_TRANSACTION, {"requests": encode_requests([{"flush": flush_request(self._lease, batch)}])}

    def result(self, batch: Batch, row: typing.Sequence[typing.Any]) -> FlushResult:
        """The flush statement's row is (applied, db_epoch): `apply()`'s answers as JSON text and
        the database's clock in seconds (a number, which every driver reads alike)."""
        applied, db_epoch = row[0], row[1]
        db_now = datetime.fromtimestamp(float(db_epoch), timezone.utc)
        return flush_result(batch, decode_results(applied)[0], db_now)
