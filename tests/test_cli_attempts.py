"""`restate-pg invocations list/describe` count the attempts of completed invocations too (the
live-work row that counts them is gone once an invocation completes)."""

from __future__ import annotations

import asyncio
import json

import pytest

from tests.apps import awakeables
from tests.support.server import serve
from tests.test_cli import run_cli


@pytest.fixture
async def ingress(clean_db):
    async with serve(awakeables.app, clean_db, inactivity_timeout=30) as served:
        yield served


@pytest.mark.slow
async def test_a_completed_invocation_shows_its_attempts(ingress, clean_db, tmp_path):
    done = await ingress.client.post("/Chain/echo", json="hi")
    assert done.status_code == 200
    invocation_id = done.headers["x-restate-id"]

    listed = await asyncio.to_thread(run_cli, "invocations", "list", "--json", "--database-url", clean_db,
                                     "--schema", "restate", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    (row,) = [r for r in json.loads(listed.stdout) if r["id"] == invocation_id]
    assert (row["status"], row["attempts"]) == ("completed", 1)

    described = await asyncio.to_thread(run_cli, "invocations", "describe", invocation_id, "--database-url", clean_db,
                                        "--schema", "restate", cwd=tmp_path)
    assert described.returncode == 0, described.stderr
    assert any(line.split() == ["attempts", "1"] for line in described.stdout.splitlines()), described.stdout
