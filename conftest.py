"""How many pytest-xdist workers `-n auto` (pyproject's addopts) starts for this repository's tests,
and in which order the tests are handed out.

Six for the suite, or any file or folder of it: most tests wait on worker subprocesses, HTTP and
PostgreSQL, so six keep two cores busy. None when the command line names single tests
(`tests/test_crash.py::test_crash_free_reference_run`): they run in pytest's own process, without
starting workers they would not use. `-n N` on the command line chooses for itself.
"""

from __future__ import annotations

import pytest

#: Workers for the whole suite: on 2 cores, 4 ran the in-process suite fastest of 2, 3, 4, 6 and 8;
#: with the SDK endpoints' and browser tests (most time waiting on other processes), 6 runs it faster.
SUITE_WORKERS = 6


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    named_tests = [arg for arg in config.args if "::" in arg]
    return 0 if named_tests and len(named_tests) == len(config.args) else SUITE_WORKERS


#: Fixtures that need PostgreSQL, which a test marked `memory` must not request.
DATABASE_FIXTURES = {"database_url", "restate_database_url", "clean_db", "side_effects", "restate_harness"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests marked `slow` (tens of seconds each) first: started last, one of them would be the
    long pole that keeps a worker busy after the others ran out of tests.

    A test marked `memory` promises to run without a database: one that asks for a database
    fixture anyway is refused here, before anything runs."""
    for item in items:
        if item.get_closest_marker("memory") is not None:
            wanted = DATABASE_FIXTURES.intersection(getattr(item, "fixturenames", ()))
            if wanted:
                raise pytest.UsageError(f"{item.nodeid} is marked memory but requests {sorted(wanted)}")
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
