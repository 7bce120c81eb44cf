"""The README's quickstart, run as written: `restate-pg dev` and the curl requests it shows."""

from __future__ import annotations

import re
import shlex
import socket
import subprocess
import sys
import typing
from pathlib import Path

import pytest

from tests.support.polling import eventually_sync
from tests.support.processes import REPO, WorkerProcess

README = REPO / "README.md"
APP = "examples.fastapi_app.services:app"


def console_examples(readme: Path = README) -> typing.List[typing.Tuple[str, str]]:
    """(command, expected output) pairs from a README's `console` blocks."""
    text = readme.read_text()
    examples = []
    for block in re.findall(r"```console\n(.*?)```", text, re.S):
        command, output = None, []
        for line in block.splitlines():
            if line.startswith("$ "):
                if command is not None:
                    examples.append((command, "\n".join(output)))
                command, output = line[2:], []
            else:
                output.append(line)
        if command is not None:
            examples.append((command, "\n".join(output)))
    return examples


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen, log: Path, timeout_s: float = 60.0) -> None:
    """Until the server listens on `port` (a loaded machine may take many seconds to start it)."""

    def listening() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"the server exited:\n{log.read_text()}")
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", port)) == 0

    if not eventually_sync(listening, timeout_s=timeout_s, interval_s=0.05):
        raise AssertionError(f"the server never listened:\n{log.read_text()}")


def matches(expected: str, actual: str) -> bool:
    pattern = ".*?".join(re.escape(part) for part in expected.strip().split("..."))
    return re.fullmatch(pattern, actual.strip(), re.S) is not None


def run_examples(port: int, readme: Path = README) -> None:
    examples = console_examples(readme)
    assert len(examples) >= 4
    for command, expected in examples:
        argv = [re.sub(r"localhost:\d+", f"127.0.0.1:{port}", a) for a in shlex.split(command)]
        assert argv[0] == "curl"
        result = subprocess.run(argv + ["-sS", "--max-time", "30"], capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        assert matches(expected, result.stdout), f"{command}\nexpected {expected!r}\n     got {result.stdout!r}"


@pytest.fixture
def server_log(tmp_path: Path) -> Path:
    return tmp_path / "server.log"


def run_command_and_examples(command: typing.List[str], log_path: Path) -> None:
    """Start an ingress command on a free port, run the README's examples against it, stop it."""
    port = free_port()
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "restate_pg", *command, APP, "--port", str(port)],
            cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
        )
    try:
        wait_for_port(port, process, log_path)
        run_examples(port)
    finally:
        process.terminate()
        assert process.wait(timeout=30) == 0, log_path.read_text()


def test_readme_quickstart_with_restate_pg_dev(clean_db, server_log):
    run_command_and_examples(["dev", "--database-url", clean_db], server_log)


def test_readme_examples_with_serve_and_a_separate_worker(clean_db, server_log):
    with WorkerProcess(APP, clean_db):
        run_command_and_examples(["serve", "--database-url", clean_db], server_log)
