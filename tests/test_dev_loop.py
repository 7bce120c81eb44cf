"""The dev loop: edit a handler, restart `restate-pg dev`, and the invocations that were in flight
continue on the new code (issue 15, item 1). A real `restate-pg dev` process, a real app file."""

from __future__ import annotations

import json
import socket
import sys
import textwrap
from pathlib import Path

import httpx
import pytest

from tests.support.polling import eventually_sync
from tests.support.processes import ChildProcess
from tests.test_cli import fresh_schema  # noqa: F401  (a fixture)

APP = textwrap.dedent('''
    import restate_pg as restate
    from restate_pg import ObjectContext, ObjectSharedContext

    editor = restate.VirtualObject("Editor")


    @editor.handler()
    async def wait(ctx: ObjectContext) -> str:
        """Waits on an awakeable whose id it keeps in its state, then says which code ran it."""
        awakeable_id, promise = ctx.awakeable(type_hint=str)
        ctx.set("awakeable", awakeable_id)
        value = await promise
        return "VERSION " + value


    @editor.handler(kind="shared")
    async def awakeable(ctx: ObjectSharedContext) -> str | None:
        return await ctx.get("awakeable")


    app = restate.app([editor])
''')


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def dev(tmp_path: Path, database_url: str, schema: str, port: int) -> ChildProcess:
    return ChildProcess([
        sys.executable, "-m", "restate_pg", "dev", "app:app", "--database-url", database_url, "--schema", schema,
        "--port", str(port), "--no-admin",
    ], cwd=tmp_path)


def wait_healthy(client: httpx.Client, process: ChildProcess) -> None:
    def healthy() -> bool:
        try:
            return client.get("/restate/health").status_code == 200
        except httpx.TransportError:
            return False

    assert eventually_sync(healthy, timeout_s=60, interval_s=0.05), process.log()


@pytest.mark.slow
def test_restarting_dev_after_an_edit_continues_in_flight_invocations_on_the_new_code(
    tmp_path: Path, database_url: str, fresh_schema: str  # noqa: F811
) -> None:
    source = tmp_path / "app.py"
    source.write_text(APP.replace("VERSION", "v1"))
    port = free_port()
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
        with dev(tmp_path, database_url, fresh_schema, port) as first:
            wait_healthy(client, first)
            sent = client.post("/Editor/doc/wait/send")
            assert sent.status_code == 202, sent.text
            invocation_id = sent.json()["invocationId"]
            kept = lambda: client.post("/Editor/doc/awakeable").content  # empty until the state is written
            awakeable_id = json.loads(eventually_sync(kept, timeout_s=30))
            assert isinstance(awakeable_id, str) and awakeable_id.startswith("sign_"), first.log()
        assert first.wait() == 0, first.log()

        source.write_text(APP.replace("VERSION", "v2"))  # an edit: a new deployment
        with dev(tmp_path, database_url, fresh_schema, port) as second:
            wait_healthy(client, second)
            resolved = client.post(f"/restate/awakeables/{awakeable_id}/resolve", json="done")
            assert resolved.status_code == 202, resolved.text
            try:
                output = client.get(f"/restate/invocation/{invocation_id}/attach", timeout=30)
            except httpx.TimeoutException:
                raise AssertionError(f"the in-flight invocation did not continue after the restart:\n{second.log()}")
            assert (output.status_code, output.json()) == (200, "v2 done"), second.log()
            assert "continue on this code" in second.log()
        assert second.wait() == 0, second.log()
