"""Testing services written with restate-pg: a pytest plugin and `create_test_harness`.

Enable the fixtures with `pytest_plugins = ["restate_pg.testing"]` in your top-level conftest.py:
`restate_database_url` (a migrated database for the session), `restate_app` (your application:
override it) and `restate_harness` (a `HarnessEnvironment`: ingress, admin API and worker running
in the test, a client, and helpers to fire timers and inspect journals and state). Outside pytest,
`async with create_test_harness(app) as env:` gives the same environment, and
`async with serve_api(fastapi_app) as base_url:` serves your own FastAPI app over real HTTP.
"""

from restate_pg.testing.database import empty_schema, migrated_database
from restate_pg.testing.harness import HarnessEnvironment, InvocationTimeout, create_test_harness, serve_api
from restate_pg.testing.plugin import pytest_addoption, restate_app, restate_database_url, restate_harness

__all__ = [
    "HarnessEnvironment",
    "InvocationTimeout",
    "create_test_harness",
    "empty_schema",
    "migrated_database",
    "pytest_addoption",
    "restate_app",
    "restate_database_url",
    "restate_harness",
    "serve_api",
]
