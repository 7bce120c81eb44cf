"""Restate's own CLI (npm `@restatedev/restate` 1.7.12, the seed example's dependency, installed
once per test session with its `npm ci`: tests/endpoints/processes.py) registering, listing, describing and removing an SDK endpoint through
restate-pg's admin API, unchanged: `restate deployments register URI --yes` and the rest."""

from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path

import pytest

from tests.endpoints.processes import NODE_MODULES
from tests.apps import kitchen
from tests.support.manifest_endpoint import manifest, serve_manifest, service
from tests.support.server import serve

@pytest.fixture(scope="session")
def restate(node_modules: Path) -> Path:
    """The `restate` command of the example's packages (examples/typescript/package.json pins 1.7.12)."""
    return NODE_MODULES / ".bin" / "restate"


async def run(restate: Path, admin_url: str, config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "RESTATE_ADMIN_URL": admin_url, "RESTATE_CLI_CONFIG_HOME": str(config), "NO_COLOR": "1"}
    done = await asyncio.to_thread(subprocess.run, [str(restate), *args], capture_output=True, text=True, timeout=120,
                                   env=env, stdin=subprocess.DEVNULL)
    assert "panicked" not in done.stderr, done.stderr
    return done


@pytest.mark.slow
async def test_restates_cli_registers_lists_and_removes_an_endpoint(restate, clean_db, tmp_path):
    async with serve(kitchen.app, clean_db, admin=True) as served, serve_manifest() as endpoint:
        endpoint.document = manifest(service("Greeter"), service("Cart", "VIRTUAL_OBJECT", {"name": "add"}))
        admin = served.base_url + "/admin"

        registered = await run(restate, admin, tmp_path, "deployments", "register", endpoint.uri, "--yes")
        assert registered.returncode == 0, registered.stdout + registered.stderr
        assert "SERVICES THAT WILL BE ADDED" in registered.stdout and "Deployment ID:  dp_1" in registered.stdout
        deployment_id = registered.stdout.split("Deployment ID:")[1].split()[0]
        assert [seen["http_version"] for seen in endpoint.seen] == ["2", "2"]  # the dry run, then the registration

        listed = await run(restate, admin, tmp_path, "deployments", "list")
        assert listed.returncode == 0, listed.stderr
        assert f"{endpoint.uri}/" in listed.stdout and deployment_id in listed.stdout
        services = await run(restate, admin, tmp_path, "services", "list")
        assert services.returncode == 0, services.stderr
        rows = {line.split()[1]: line for line in services.stdout.splitlines() if line.strip().startswith("[public]")}
        assert deployment_id in rows["Greeter"] and deployment_id in rows["Cart"] and "virtual object" in rows["Cart"]
        assert "Counter" in rows  # the in-process services beside them

        described = await run(restate, admin, tmp_path, "deployments", "describe", deployment_id)
        assert described.returncode == 0, described.stderr
        assert "HTTP/2.0" in described.stdout and "Bidirectional Stream" in described.stdout and "[5, 6]" in described.stdout

        again = await run(restate, admin, tmp_path, "deployments", "register", endpoint.uri, "--yes")
        assert again.returncode == 0 and f"Deployment already exists with id {deployment_id}" in again.stdout
        forced = await run(restate, admin, tmp_path, "deployments", "register", endpoint.uri, "--yes", "--force")
        assert forced.returncode == 0, forced.stdout + forced.stderr
        assert "Greeter  2" in forced.stdout

        unreachable = await run(restate, admin, tmp_path, "deployments", "register", "http://127.0.0.1:1", "--yes")
        assert unreachable.returncode != 0 and "unable to reach the remote endpoint" in unreachable.stderr

        removed = await run(restate, admin, tmp_path, "deployments", "remove", deployment_id, "--yes", "--force")
        assert removed.returncode == 0, removed.stdout + removed.stderr
        assert f"Deployment {deployment_id} removed successfully" in removed.stdout + removed.stderr
        assert deployment_id not in (await run(restate, admin, tmp_path, "deployments", "list")).stdout
