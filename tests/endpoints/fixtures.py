"""Pytest fixtures starting real SDK endpoints (tests/endpoints/processes.py), for the
service-protocol tests: registered as a plugin by tests/conftest.py, so any test may ask for them.

- `node_modules` (session): the example's packages installed and the TypeScript services built.
- `start_endpoint`: a factory, `start_endpoint("typescript" | "python", mode, **options)`; every
  endpoint it started is stopped when the test ends.
- `typescript_endpoint`, `python_endpoint`: one endpoint each, over h2c (BIDI_STREAM).
- `sdk_endpoint`: parametrised over every SDK and mode (`typescript-h2`, ..., `python-h1`).

When a test fails, the logs of the endpoints it started are added to its report.
"""

from __future__ import annotations

import typing
from pathlib import Path

import pytest

from tests.endpoints.processes import (
    PYTHON_MODES,
    TYPESCRIPT_MODES,
    Endpoint,
    ensure_node_modules,
    start_endpoint as start,
    stop_all,
)

#: Every endpoint variant the SDKs offer, as (sdk, mode).
VARIANTS = [("typescript", mode) for mode in TYPESCRIPT_MODES] + [("python", mode) for mode in PYTHON_MODES]

_STARTED = pytest.StashKey[typing.List[Endpoint]]()


class StartEndpoint(typing.Protocol):
    def __call__(self, sdk: str, mode: str = "h2", **options: typing.Any) -> Endpoint: ...


@pytest.fixture(scope="session")
def node_modules() -> Path:
    """The example's node_modules, installed once per session (see `ensure_node_modules`)."""
    return ensure_node_modules()


@pytest.fixture
def start_endpoint(request: pytest.FixtureRequest) -> typing.Iterator[StartEndpoint]:
    started = request.node.stash.setdefault(_STARTED, [])

    def start_and_track(sdk: str, mode: str = "h2", **options: typing.Any) -> Endpoint:
        endpoint = start(sdk, mode, **options)
        started.append(endpoint)
        return endpoint

    yield start_and_track
    stop_all(started)


@pytest.fixture
def typescript_endpoint(start_endpoint: StartEndpoint) -> Endpoint:
    return start_endpoint("typescript", "h2")


@pytest.fixture
def python_endpoint(start_endpoint: StartEndpoint) -> Endpoint:
    return start_endpoint("python", "h2")


@pytest.fixture(params=VARIANTS, ids=[f"{sdk}-{mode}" for sdk, mode in VARIANTS])
def sdk_endpoint(request: pytest.FixtureRequest, start_endpoint: StartEndpoint) -> Endpoint:
    sdk, mode = request.param
    return start_endpoint(sdk, mode)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> typing.Iterator[None]:
    """A failed test's report carries the log of each endpoint it started."""
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        for endpoint in item.stash.get(_STARTED, []):
            report.sections.append((f"log of {endpoint}", endpoint.log()))
