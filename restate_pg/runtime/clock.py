"""The database's clock, as seen from this process.

Every round trip that returns PostgreSQL's `now()` re-synchronises the offset, so timers are set
in database time (no dependence on this host's wall clock) and fired with the local monotonic
clock (no dependence on the network either).
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta


class DbClock:
    def __init__(self) -> None:
        self._db: datetime | None = None
        self._mono = 0.0

    def sync(self, db_now: datetime) -> None:
        self._db = db_now
        self._mono = time.monotonic()

    def now(self) -> datetime:
        if self._db is None:
            raise RuntimeError("the database clock has not been read yet")
        return self._db + timedelta(seconds=time.monotonic() - self._mono)

    def seconds_until(self, when: datetime) -> float:
        return (when - self.now()).total_seconds()
