"""Upgrading from the previous release: invocations 0.1.0 left in flight finish on this code.

0.1.0 (commit 33701bf) is installed from git history into a virtualenv of its own, and its
`restate-pg` creates a fresh database, serves the app of tests/apps/upgrade.py and leaves in it a
sleeping invocation, one suspended on an awakeable (holding an object key), an exclusive call
waiting in that key's inbox behind it, one suspended on a call result, a delayed send and a
completed call with an idempotency key. Then, as the README's "Upgrading from 0.1.0" says: stop
the old worker, `restate-pg migrate` with this code, start a worker of this code. Every
invocation must complete with the output 0.1.0's journal leads to, replayed rather than re-run.

Both versions are driven only through what users see (the CLI, the ingress's HTTP contract, the
introspection views, `restate_pg.testing`), never through the store's internals, which differ.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import io
import os
import signal
import site
import socket
import subprocess
import sys
import tarfile
import typing
from pathlib import Path

import httpx
import psycopg
import pytest

from restate_pg.testing import create_test_harness
from restate_pg.testing.database import temporary_database
from tests.apps import upgrade
from tests.support.polling import eventually
from tests.support.processes import REPO, ChildProcess

#: The previous release: its commit, and the version it calls itself.
PREVIOUS_RELEASE = "33701bf"
PREVIOUS_VERSION = "0.1.0"
APP = "tests.apps.upgrade:app"
#: What `git archive` takes of the previous release: enough to build its wheel.
RELEASE_PATHS = ("pyproject.toml", "README.md", "restate_pg", "migrations")

Statuses = typing.Dict[str, str]


@pytest.fixture(scope="module")
def previous_release(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The `restate-pg` command of 0.1.0, in a virtualenv of its own; it built in seconds.

    The wheel is built from git history without build isolation (setuptools of the test extra)
    and installed without dependencies; the virtualenv then reaches this environment's installed
    packages through a .pth file, after its own site-packages, so that it imports 0.1.0's
    restate_pg and this environment's psycopg, FastAPI... without downloading anything."""
    try:
        subprocess.run(["git", "-C", str(REPO), "rev-parse", "--verify", f"{PREVIOUS_RELEASE}^{{commit}}"],
                       check=True, capture_output=True, text=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        detail = exc.stderr.strip() if isinstance(exc, subprocess.CalledProcessError) else str(exc)
        pytest.fail(f"tests/test_upgrade.py installs restate-pg {PREVIOUS_VERSION} from git history, and commit "
                    f"{PREVIOUS_RELEASE} is not in {REPO} ({detail}): run the tests in a clone with full history "
                    "(`git fetch --unshallow`)", pytrace=False)
    if int(importlib.metadata.version("setuptools").split(".")[0]) < 77:
        pytest.fail(f"building restate-pg {PREVIOUS_VERSION} needs setuptools>=77 in this environment "
                    "(the test extra: pip install -e '.[test]')", pytrace=False)
    root = tmp_path_factory.mktemp("restate-pg-previous")
    archive = subprocess.run(["git", "-C", str(REPO), "archive", PREVIOUS_RELEASE, *RELEASE_PATHS],
                             check=True, capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(root / "src", filter="data")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                    str(root / "src"), "--wheel-dir", str(root / "wheels")], check=True)
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    wheel, = (root / "wheels").glob("restate_pg-*.whl")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-deps",
                    str(wheel)], check=True)
    site_packages = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                   check=True, capture_output=True, text=True).stdout.strip()
    # This environment's site-packages, not its sys.path: that may hold the repository (an
    # editable install in compat mode), whose restate_pg would shadow 0.1.0's.
    (Path(site_packages) / "restate_pg_test_dependencies.pth").write_text("".join(f"{path}\n" for path in site.getsitepackages()))
    command = venv / "bin" / "restate-pg"
    version = subprocess.run([str(command), "--version"], cwd=root, check=True, capture_output=True, text=True)
    assert version.stdout.split() == ["restate-pg", PREVIOUS_VERSION], version.stdout
    return command


@pytest.fixture
def fresh_database(database_url: str) -> typing.Iterator[str]:
    """A database of this test's own, on the suite's server, with nothing in it: 0.1.0 migrates it."""
    with temporary_database(database_url, prefix="restate_pg_upgrade") as url:
        yield url


@pytest.mark.slow
async def test_invocations_left_in_flight_by_0_1_0_finish_after_migrate(previous_release: Path, fresh_database: str) -> None:
    url = fresh_database
    run([str(previous_release), "migrate", "--database-url", url])

    # -- 0.1.0: leave invocations in every waiting state, then stop --------------------------------
    port = free_port()
    old = ChildProcess([str(previous_release), "dev", APP, "--database-url", url, "--port", str(port), "--no-admin",
                        "--inactivity-timeout", "0.2", "--poll-interval", "0.2"])
    with old:
        await listening(port, old)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as ingress:
            once = await ingress.post("/UpgradeLocker/k1/add", json=1, headers={"idempotency-key": "add-once"})
            assert once.status_code == 200, once.text
            assert once.json() == {"total": 1, "log": ["added 1"]}
            ids = {
                "hold": await send(ingress, "/UpgradeLocker/k1/hold/send", "Ada"),
                "inboxed": await send(ingress, "/UpgradeLocker/k1/add/send", 2),
                "relay": await send(ingress, "/UpgradeNapper/relay/send", "Grace"),
                "delayed": await send(ingress, "/UpgradeNapper/nap/send?delay=1h", "Linus"),
            }
        left = {"hold": "suspended", "inboxed": "pending", "relay": "suspended", "nap": "suspended",
                "delayed": "scheduled", "once": "completed"}
        seen = await eventually(lambda: statuses(url, ids), left)
        assert seen == left, old.log()
        ids["nap"], = await column(url, "SELECT id FROM restate.sys_invocation WHERE invoked_by_id = %s", [ids["relay"]])
        journals_before = await journals(url, ids)
        assert journals_before["nap"][-1][1:3] == ("Command: Sleep", None), journals_before["nap"]
        old.signal(signal.SIGTERM)
        assert old.wait(timeout=30) == 0, old.log()
    assert await statuses(url, ids) == left, "stopping the 0.1.0 worker changed the invocations"
    deployments = await column(url, "SELECT id FROM restate.sys_deployment")
    assert len(deployments) == 1, deployments

    # -- this code: refused until migrated; migrate (then 0.1.0 is refused); a worker finishes all --
    refused = refusal([sys.executable, "-m", "restate_pg", "worker", APP, "--database-url", url])
    assert "run `restate-pg migrate`" in refused, refused
    migrated = run([sys.executable, "-m", "restate_pg", "migrate", "--database-url", url])
    assert "migrated schema 'restate'" in migrated, migrated
    refused = refusal([str(previous_release), "worker", APP, "--database-url", url])
    assert "migrated by a newer restate-pg" in refused, refused
    assert await statuses(url, ids) == left, "the migration changed the invocations"

    async with create_test_harness(upgrade.app, database_url=url) as env:
        # Same user code, same derived deployment: the invocations pinned to 0.1.0's worker are ours.
        assert await column(url, "SELECT id FROM restate.sys_deployment") == deployments, (
            "this code derives another deployment id than 0.1.0 for the same handlers: "
            "invocations pinned to the old deployment would never resume")
        assert await statuses(url, ids) == left  # nothing is due: the timers are an hour away

        again = await asyncio.wait_for(env.client.object_call(upgrade.add, "k1", 1, idempotency_key="add-once"), 30)
        assert again == {"total": 1, "log": ["added 1"]}  # the stored result, while the key is held

        awakeable_id = (await env.state("UpgradeLocker", "k1"))["awakeable"]
        await env.client.resolve_awakeable(awakeable_id, "the key")
        old_pid = old.pid
        assert await env.run_to_completion(ids["hold"], timeout=60) == f"Ada got the key, started in {old_pid}"
        assert await env.run_to_completion(ids["inboxed"], timeout=60) == {
            "total": 3, "log": ["added 1", "Ada holds", "Ada got the key", "added 2"]}
        assert await env.run_to_completion(ids["relay"], timeout=60) == (
            f"relayed by {old_pid}: Grace woke up, started in {old_pid}")
        assert await env.run_to_completion(ids["nap"], timeout=60) == f"Grace woke up, started in {old_pid}"
        assert await env.run_to_completion(ids["delayed"], timeout=60) == f"Linus woke up, started in {os.getpid()}"

        state = await env.state("UpgradeLocker", "k1")
        assert (state["total"], state["log"]) == (3, ["added 1", "Ada holds", "Ada got the key", "added 2"])
        held, inboxed = [await column(url, "SELECT completed_at FROM restate.sys_invocation WHERE id = %s", [ids[name]])
                         for name in ("hold", "inboxed")]
        assert held[0] < inboxed[0], "the inboxed call completed before the one holding the key"

        journals_after = await journals(url, ids)
        for name, before in journals_before.items():
            assert journals_after[name][:len(before)] == before, f"the journal of {name} changed under the new code"
            assert journals_after[name][-1][1] == "Command: Output", journals_after[name]
        again = await asyncio.wait_for(env.client.object_call(upgrade.add, "k1", 1, idempotency_key="add-once"), 30)
        assert again == {"total": 1, "log": ["added 1"]}


def run(args: typing.Sequence[str]) -> str:
    """Run a command to completion in the repository; its output, or a failure showing it."""
    done = subprocess.run(list(args), cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"{' '.join(args)} exited {done.returncode}:\n{done.stdout}{done.stderr}"
    return done.stdout + done.stderr


def refusal(args: typing.Sequence[str]) -> str:
    """What a command that must refuse to start said (a worker that starts fails the test)."""
    try:
        done = subprocess.run(list(args), cwd=REPO, capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"{' '.join(args)} started instead of refusing:\n{exc.stderr!r}") from None
    assert done.returncode != 0, f"{' '.join(args)} exited 0:\n{done.stdout}{done.stderr}"
    return done.stderr


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def listening(port: int, process: ChildProcess) -> None:
    """Until the process serves on `port` (it may take many seconds to start on a loaded machine)."""
    async def up() -> bool:
        assert process.process is not None and process.process.poll() is None, f"it exited:\n{process.log()}"
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", port)) == 0

    assert await eventually(up, True, timeout_s=60), f"it never listened on {port}:\n{process.log()}"


async def send(ingress: httpx.AsyncClient, path: str, body: typing.Any) -> str:
    response = await ingress.post(path, json=body)
    assert response.status_code == 202, response.text
    return typing.cast(str, response.json()["invocationId"])


async def statuses(url: str, ids: typing.Dict[str, str]) -> Statuses:
    """Each invocation's status in `sys_invocation`, by the names of `ids`; `nap` is the call
    `relay` made (until its id is in `ids`), `once` the completed idempotent call."""
    async with await psycopg.AsyncConnection.connect(url) as conn:
        rows = await (await conn.execute(
            "SELECT id, status, invoked_by_id, idempotency_key FROM restate.sys_invocation")).fetchall()
    names = {invocation_id: name for name, invocation_id in ids.items()}
    seen: Statuses = {}
    for invocation_id, status, caller, idempotency_key in rows:
        if invocation_id in names:
            seen[names[invocation_id]] = status
        elif caller == ids["relay"]:
            seen["nap"] = status
        elif idempotency_key == "add-once":
            seen["once"] = status
    return seen


async def journals(url: str, ids: typing.Dict[str, str]) -> typing.Dict[str, typing.List[typing.Tuple[typing.Any, ...]]]:
    """The rows of `sys_journal` (index, entry type, name, JSON) of each invocation in `ids`."""
    async with await psycopg.AsyncConnection.connect(url) as conn:
        rows = await (await conn.execute(
            "SELECT id, index, entry_type, name, entry_json FROM restate.sys_journal WHERE id = ANY(%s) ORDER BY id, index",
            [list(ids.values())])).fetchall()
    by_id: typing.Dict[str, typing.List[typing.Tuple[typing.Any, ...]]] = {invocation_id: [] for invocation_id in ids.values()}
    for invocation_id, *entry in rows:
        by_id[invocation_id].append(tuple(entry))
    return {name: by_id[invocation_id] for name, invocation_id in ids.items()}


async def column(url: str, query: str, params: typing.Sequence[typing.Any] = ()) -> typing.List[typing.Any]:
    async with await psycopg.AsyncConnection.connect(url) as conn:
        return [row[0] for row in await (await conn.execute(query, params)).fetchall()]
