"""The database clock keeps the tightest recent lower bound of the offset."""

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
