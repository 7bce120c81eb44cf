"""The serving processes' collector (cli/running.py, `tune_gc`): young passes at CPython's default
while few attempts run (short pauses for a lone caller), rarer under load (less CPU), the
threshold checked as each collection starts."""

from __future__ import annotations

import gc
import typing

import pytest

from restate_pg.cli.running import BUSY_ATTEMPTS, GC_IDLE_YOUNG_THRESHOLD, GC_YOUNG_THRESHOLD, _follow_load


@pytest.fixture
def thresholds() -> typing.Iterator[None]:
    saved = gc.get_threshold()
    yield
    gc.set_threshold(*saved)


def test_the_young_threshold_follows_the_attempts_running(thresholds: None) -> None:
    running = 0
    gc.set_threshold(GC_YOUNG_THRESHOLD, 10, 10)
    _follow_load(lambda: running, "start", {"generation": 0})
    assert gc.get_threshold() == (GC_IDLE_YOUNG_THRESHOLD, 10, 10)
    running = BUSY_ATTEMPTS
    _follow_load(lambda: running, "stop", {"generation": 0})  # only as a collection starts
    assert gc.get_threshold() == (GC_IDLE_YOUNG_THRESHOLD, 10, 10)
    _follow_load(lambda: running, "start", {"generation": 1})
    assert gc.get_threshold() == (GC_YOUNG_THRESHOLD, 10, 10)
    running = BUSY_ATTEMPTS - 1
    _follow_load(lambda: running, "start", {"generation": 0})
    assert gc.get_threshold() == (GC_IDLE_YOUNG_THRESHOLD, 10, 10)
