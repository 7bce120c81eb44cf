"""restate-sdk's `restate.harness`: run an application for a test (here without Docker: the
ingress, admin API and a worker in the test's process, on PostgreSQL; see restate_pg.testing)."""

from restate_pg.testing.harness import HarnessEnvironment, create_test_harness, test_harness

__all__ = ["HarnessEnvironment", "create_test_harness", "test_harness"]
