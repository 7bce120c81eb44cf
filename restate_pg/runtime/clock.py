"""The database's clock, as seen from this process.

Every round trip that returns PostgreSQL's `now()` is a sample of the offset between the
database's clock and this process's monotonic clock, so timers are set in database time (no
dependence on this host's wall clock) and fired with the local monotonic clock (no dependence on
the network either).

A sample is read when the answer arrives, after the statement started: `now()` was at most the
database's time then, so each sample is a lower bound of the offset, low by the time the round
trip took (tens of milliseconds when a group commit waited behind another). The clock keeps the
highest recent bound, which is the tightest: timers then fire on time, and never early.

A sample whose request's send time is known (`bound`: every group commit) is also an upper
bound: `now()` was at least the database's time when the request left. Wake-up times are
computed from the lowest recent upper bound (`latest`), so that a sleep never ends early whoever
compares its time: this process's timers, which read the lower bound, or PostgreSQL's own `now()`
when a claim resumes a suspended invocation (from a lower bound, a sleep that suspended ended
early by the bound's slack).
"""

from __future__ import annotations

import time
from datetime import datetime, timezone

#: A bound older than this is replaced by the next sample, so that a step of either clock (an
#: NTP correction on the database host) is followed within this time.
SAMPLE_LIFETIME = 30.0


class DbClock:
    def __init__(self) -> None:
        self._offset: float | None = None  # database epoch seconds minus local monotonic seconds
        self._offset_at = 0.0
        self._upper: float | None = None  # the same, bounded from above (samples with a send time)
        self._upper_at = 0.0
        self._tz: timezone | None = None

    def sync(self, db_now: datetime) -> None:
        mono = time.monotonic()
        sample = db_now.timestamp() - mono
        if self._offset is None or sample >= self._offset or mono - self._offset_at > SAMPLE_LIFETIME:
            self._offset = sample
            self._offset_at = mono
        if self._tz is None:
            self._tz = db_now.tzinfo if isinstance(db_now.tzinfo, timezone) else timezone.utc

    def bound(self, db_now: datetime, sent_at: float) -> None:
        """A sample from a request sent at `sent_at` (time.monotonic()) and answered now: both
        bounds of the offset."""
        self.sync(db_now)
        sample = db_now.timestamp() - sent_at
        if self._upper is None or sample <= self._upper or sent_at - self._upper_at > SAMPLE_LIFETIME:
            self._upper = sample
            self._upper_at = sent_at

    def latest(self) -> datetime:
        """The database's time now, at the latest: what a wake-up time is computed from. `now()`
        until a sample bounds it from above (or when the bounds disagree after a clock step)."""
        if self._offset is None:
            raise RuntimeError("the database clock has not been read yet")
        offset = self._offset if self._upper is None else max(self._upper, self._offset)
        return datetime.fromtimestamp(time.monotonic() + offset, tz=self._tz)

    def now(self) -> datetime:
        if self._offset is None:
            raise RuntimeError("the database clock has not been read yet")
        return datetime.fromtimestamp(time.monotonic() + self._offset, tz=self._tz)

    def seconds_until(self, when: datetime) -> float:
        return (when - self.now()).total_seconds()
