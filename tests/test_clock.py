"""The database clock keeps the tightest recent lower bound of the offset (what timers fire by),
and the tightest recent upper bound (what wake-up times are computed from), so that a sleep never
ends early whichever clock compares its time."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from restate_pg.runtime import clock as clock_module
from restate_pg.runtime.clock import DbClock


@pytest.fixture
def mono(monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(clock_module.time, "monotonic", lambda: now[0])
    return now


DB = datetime(2026, 11, 25, 12, 0, 0, tzinfo=timezone.utc)


def test_a_sample_read_late_does_not_pull_the_clock_back(mono):
    clock = DbClock()
    clock.sync(DB)  # answered at once
    mono[0] += 0.050
    clock.sync(DB + timedelta(milliseconds=20))  # started 30 ms before its answer arrived
    assert clock.now() == DB + timedelta(milliseconds=50)
    assert clock.seconds_until(DB + timedelta(seconds=1)) == pytest.approx(0.95)


def test_a_tighter_sample_moves_the_clock_forward(mono):
    clock = DbClock()
    clock.sync(DB - timedelta(milliseconds=30))  # late answer
    clock.sync(DB)
    assert clock.now() == DB


def test_an_old_bound_gives_way_so_that_a_clock_step_is_followed(mono):
    clock = DbClock()
    clock.sync(DB)
    mono[0] += clock_module.SAMPLE_LIFETIME + 1
    stepped_back = DB + timedelta(seconds=clock_module.SAMPLE_LIFETIME + 1) - timedelta(seconds=5)
    clock.sync(stepped_back)  # the database host's clock was set back 5 s
    assert clock.now() == stepped_back


def test_unsynchronised_clock_refuses_to_guess():
    with pytest.raises(RuntimeError):
        DbClock().now()


def test_a_round_trip_bounds_the_database_time_on_both_sides(mono):
    """Sent at 1000.000, started in the database at DB (its `now()`), answered at 1000.010: the
    database's time at 1000.010 is between DB (answered at once) and DB + 10 ms (started at once)."""
    clock = DbClock()
    sent_at = mono[0]
    mono[0] += 0.010
    clock.bound(DB, sent_at)
    assert clock.now() == DB
    assert clock.latest() == DB + timedelta(milliseconds=10)
    mono[0] += 1.0
    assert (clock.now(), clock.latest()) == (DB + timedelta(seconds=1), DB + timedelta(seconds=1.01))


def test_a_wake_up_time_from_the_upper_bound_is_never_early(mono):
    """The slack that made a suspended sleep end early: its wake-up time computed from the lower
    bound, then compared by PostgreSQL with its own, true `now()`."""
    clock = DbClock()
    true_offset = DB.timestamp() - mono[0]
    sent_at = mono[0]
    mono[0] += 0.008
    clock.bound(datetime.fromtimestamp(sent_at + true_offset + 0.003, tz=timezone.utc), sent_at)  # started 3 ms after it left
    true_now = datetime.fromtimestamp(mono[0] + true_offset, tz=timezone.utc)
    assert clock.now() <= true_now <= clock.latest()
    assert clock.latest() + timedelta(milliseconds=300) >= true_now + timedelta(milliseconds=300)


def test_tighter_upper_bounds_win_and_old_ones_give_way(mono):
    clock = DbClock()
    clock.bound(DB, mono[0] - 0.030)  # a slow round trip: a loose upper bound
    clock.bound(DB, mono[0] - 0.002)
    assert clock.latest() == DB + timedelta(milliseconds=2)
    clock.bound(DB, mono[0] - 0.020)  # looser: ignored
    assert clock.latest() == DB + timedelta(milliseconds=2)
    mono[0] += clock_module.SAMPLE_LIFETIME + 1
    stepped_back = DB + timedelta(seconds=clock_module.SAMPLE_LIFETIME + 1) - timedelta(seconds=5)
    clock.bound(stepped_back, mono[0])  # the database host's clock was set back 5 s
    assert clock.latest() == stepped_back


def test_without_an_upper_bound_the_latest_time_is_the_lower_bound(mono):
    clock = DbClock()
    clock.sync(DB)
    assert clock.latest() == clock.now() == DB
    with pytest.raises(RuntimeError):
        DbClock().latest()
