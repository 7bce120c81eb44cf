"""The README's quickstart, workflow and operator sections, run as printed: `restate-pg dev` (or
`serve` with a worker) on the quickstart app, then every command of their `console` blocks, in
order: curl requests against its ports, `restate-pg` commands against its database.

Only the host and port of a URL are changed (and curl gets `-sS`, so that it prints no progress
meter); each output the README prints is compared with what the command printed, `...` standing for
anything. A command whose comment is `# waits` runs in the background (a user runs it in a shell
of its own): its output is checked once the rest of its section has run.
"""

from __future__ import annotations

import os
import re
import shlex
import socket
import subprocess
import sys
import typing
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.polling import eventually_sync
from tests.support.processes import REPO, WorkerProcess

README = REPO / "README.md"
APP = "examples.fastapi_app.services:app"
#: The sections of the README whose console blocks this file runs, in the README's order.
SECTIONS = ("Quickstart", "Waiting on the outside world", "The operator's command line")
#: The port of the admin API in the README's commands (any other is the ingress's).
ADMIN_PORT = 9070
COMMAND_TIMEOUT_S = 30


@dataclass
class Example:
    """One `$ command` of a console block and the output the README prints after it."""

    command: str
    expected: str

    @property
    def waits(self) -> bool:
        return self.command.rstrip().endswith("# waits")


def console_examples(readme: Path = README, text: typing.Optional[str] = None) -> typing.List[Example]:
    """The examples of the `console` blocks of `text` (default: the whole of `readme`)."""
    text = readme.read_text() if text is None else text
    examples: typing.List[Example] = []
    for block in re.findall(r"```console\n(.*?)```", text, re.S):
        command: typing.Optional[str] = None
        output: typing.List[str] = []
        for line in block.splitlines():
            if line.startswith("$ "):
                if command is not None:
                    examples.append(Example(command, "\n".join(output)))
                command, output = line[2:], []
            else:
                output.append(line)
        if command is not None:
            examples.append(Example(command, "\n".join(output)))
    return examples


def section(title: str, readme: Path = README) -> str:
    """The text of the README's `## title` section, up to the next `## ` heading."""
    return readme.read_text().split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


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
    """`actual` is `expected`, where `...` stands for anything and a run of spaces for any run
    (a table's column widths follow its longest value, which `...` may hide)."""
    parts = [re.escape(part) for part in expected.strip().split("...")]
    pattern = ".*?".join(re.sub(r"(\\ )+", " +", part) for part in parts)
    return re.fullmatch(pattern, actual.strip(), re.S) is not None


@dataclass
class Target:
    """Where the README's commands go: the ingress (any port the README names but the admin
    API's), the admin API, and the database of `restate-pg` commands."""

    port: int
    admin_port: typing.Optional[int] = None
    database_url: typing.Optional[str] = None

    def argv(self, command: str) -> typing.List[str]:
        """The command as printed, run here: its URLs' host and port changed, nothing else."""
        def local(match: re.Match) -> str:
            port = self.admin_port if int(match.group(1)) == ADMIN_PORT else self.port
            assert port is not None, f"{command}: no admin API here"
            return f"127.0.0.1:{port}"

        argv = [re.sub(r"localhost:(\d+)", local, arg) for arg in shlex.split(command, comments=True)]
        if argv[0] == "curl":
            return argv + ["-sS", "--max-time", str(COMMAND_TIMEOUT_S)]
        if argv[0] == "restate-pg":
            assert self.database_url is not None, f"{command}: no database for restate-pg here"
            return [str(Path(sys.executable).parent / "restate-pg"), *argv[1:]]
        raise AssertionError(f"the README shows a command this test cannot run: {command}")

    def env(self) -> typing.Dict[str, str]:
        return {**os.environ, "DATABASE_URL": self.database_url} if self.database_url else dict(os.environ)

    def start(self, example: Example) -> "subprocess.Popen[str]":
        return subprocess.Popen(self.argv(example.command), cwd=REPO, env=self.env(), text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def check(example: Example, process: "subprocess.Popen[str]") -> None:
    """The command ended well and printed what the README prints after it."""
    try:
        output, _ = process.communicate(timeout=COMMAND_TIMEOUT_S + 5)
    except subprocess.TimeoutExpired:
        process.kill()
        raise AssertionError(f"{example.command}\nanswered nothing in {COMMAND_TIMEOUT_S} s") from None
    failed = process.returncode != 0 and not example.expected.startswith("restate-pg: error:")
    assert not failed, f"{example.command}\nexited with {process.returncode}:\n{output}"
    assert matches(example.expected, output), f"{example.command}\nexpected {example.expected!r}\n     got {output!r}"


def run_section(target: Target, text: str) -> None:
    """The console examples of `text`, in order; those that wait are checked at the end."""
    waiting = []
    for example in console_examples(text=text):
        process = target.start(example)
        if example.waits:
            waiting.append((example, process))
        else:
            check(example, process)
    for example, process in waiting:
        check(example, process)


def run_examples(port: int, readme: Path = README) -> None:
    """Every console example of `readme` against an ingress on `port` (an example app's README)."""
    examples = console_examples(readme)
    assert len(examples) >= 4
    run_section(Target(port), readme.read_text())


def test_the_sections_with_console_blocks_are_those_run_here() -> None:
    """A console block outside these sections would go untested: each of them has some, no other."""
    titles = re.findall(r"^## (.+)$", README.read_text(), re.M)
    with_console = [title for title in titles if console_examples(text=section(title))]
    assert with_console == list(SECTIONS)


def test_the_quickstart_starts_the_app_these_tests_serve() -> None:
    """The quickstart's command ends with `restate-pg dev APP`: the tests below run that command
    (on the test database and free ports) and the sections' examples against it."""
    install_and_run = re.findall(r"```sh\n(.*?)```", section("Quickstart"), re.S)[0]
    assert install_and_run.strip().split(" && ")[-1] == f"restate-pg dev {APP}"


@pytest.fixture
def server_log(tmp_path: Path) -> Path:
    return tmp_path / "server.log"


def run_command_and_sections(command: typing.List[str], database_url: str, log_path: Path) -> None:
    """Start an ingress command on free ports, run the README's sections against it, stop it."""
    target = Target(free_port(), free_port(), database_url)
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "restate_pg", *command, APP, "--database-url", database_url,
             "--port", str(target.port), "--admin-port", str(target.admin_port)],
            cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
        )
    try:
        wait_for_port(target.port, process, log_path)
        wait_for_port(typing.cast(int, target.admin_port), process, log_path)
        for title in SECTIONS:
            run_section(target, section(title))
    finally:
        process.terminate()
        assert process.wait(timeout=30) == 0, log_path.read_text()


@pytest.mark.slow
def test_readme_quickstart_with_restate_pg_dev(clean_db, server_log):
    run_command_and_sections(["dev"], clean_db, server_log)


@pytest.mark.slow
def test_readme_examples_with_serve_and_a_separate_worker(clean_db, server_log):
    with WorkerProcess(APP, clean_db):
        run_command_and_sections(["serve"], clean_db, server_log)
