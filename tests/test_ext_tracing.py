"""restate_pg.ext.tracing: spans of a wrapped tracer are children of the attempt's span, whatever
their nesting; replayed code records none; a span left open ends with its attempt."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys

import psycopg
import pytest
from psycopg import sql

from restate_pg.store.migrate import upgrade
from tests.support.processes import REPO


@pytest.mark.slow
def test_spans_hang_under_their_attempt_and_replay_records_none(database_url: str) -> None:
    schema = f"traced_{secrets.token_hex(4)}"
    upgrade(database_url, schema)
    try:
        done = subprocess.run([sys.executable, "-m", "tests.apps.traced", database_url, schema], cwd=REPO,
                              capture_output=True, text=True, timeout=60)
    finally:
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["answer"] == "traced Ada"
    spans = result["spans"]
    attempts = {span["attempt"]: span for span in spans if span["name"] == "invoke Traced/traced"}
    assert sorted(attempts) == [1, 2]  # suspended at the sleep, resumed
    first, second = attempts[1]["span_id"], attempts[2]["span_id"]
    mine = sorted((span["name"], span["parent_id"]) for span in spans if span["name"] in ("outer", "inner", "left open", "after"))
    # each recorded once, in the first attempt (the second replays them), and "after" in the second
    assert mine == sorted([("outer", first), ("inner", first), ("left open", first), ("after", second)])
