"""What `--help` says matches what the commands do: the subcommands a summary names exist, and the
defaults it quotes are the real ones."""

from __future__ import annotations

import inspect
import re
import subprocess
import sys
from pathlib import Path

import pytest


def _help(*command: str) -> str:
    done = subprocess.run([sys.executable, "-m", "restate_pg", *command, "--help"], capture_output=True, text=True,
                          timeout=60, cwd=Path(__file__).resolve().parent.parent)
    assert done.returncode == 0, done.stderr
    return " ".join(done.stdout.split())  # argparse wraps lines at the terminal's width


def _subcommands(command: str) -> set[str]:
    import argparse

    from restate_pg.cli.main import build_parser

    def choices(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
        (actions,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        return dict(actions.choices)

    return set(choices(choices(build_parser())[command]))


@pytest.mark.parametrize("command", ["invocations", "cron"])
def test_the_verbs_a_summary_lists_are_subcommands(command: str) -> None:
    overview = _help()
    summary = re.search(rf" {command} (list, [a-z, -]+? or [a-z-]+) ", overview)
    assert summary is not None, overview
    verbs = re.split(r", | or ", summary.group(1))
    subcommands = _subcommands(command)
    for verb in verbs:  # `restart` stands for restart-as-new
        assert verb in subcommands or any(name.startswith(verb + "-") for name in subcommands), (verb, subcommands)


def test_serving_commands_quote_the_concurrency_defaults() -> None:
    from restate_pg.worker.engine import DEFAULT_CONCURRENCY, ENDPOINTS_ONLY_CONCURRENCY, Engine

    assert inspect.signature(Engine.__init__).parameters["concurrency"].default is None  # chosen by the app
    for command in ("worker", "dev", "serve"):
        text = " ".join(_help(command).split())
        quoted = re.search(r"--concurrency N .*?\(default: (\d+); (\d+) in a process with no application", text)
        assert quoted is not None, text
        assert quoted.groups() == (str(DEFAULT_CONCURRENCY), str(ENDPOINTS_ONLY_CONCURRENCY))
