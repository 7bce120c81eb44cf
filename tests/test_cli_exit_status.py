"""The one exit-status rule of `restate-pg` (see `restate_pg.cli.main`): 2 when a command cannot
run as given (usage, an argument in the wrong form, a database not reachable or not migrated when
it starts), 1 when it ran and failed; for every command alike, `sql` included, each failure in one
line on stderr."""

from __future__ import annotations

import typing

import pytest

from restate_pg.cli.main import main
from restate_pg.core.errors import DatabaseUnavailable
from restate_pg.store.console import QueryError
from tests.test_cli import ERROR_PREFIX, UNREACHABLE

#: One command line of each command that reads the database (the database options are added).
OPERATOR_COMMANDS = [
    ["sql", "SELECT 1"],
    ["invocations", "list"],
    ["invocations", "describe", "inv_1" + "0" * 33],
    ["services", "list"],
    ["deployments", "list"],
    ["kv", "get", "Counter", "k"],
    ["cron", "list"],
]


def one_error_line(err: str) -> str:
    """The message of the one `restate-pg: error: ...` line `err` holds."""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(ERROR_PREFIX), err
    assert "Traceback" not in err
    return lines[0][len(ERROR_PREFIX):]


def fail_with(error: Exception) -> typing.Callable[..., typing.NoReturn]:
    def fail(*args: typing.Any, **kwargs: typing.Any) -> typing.NoReturn:
        raise error

    return fail


@pytest.mark.parametrize("error", [QueryError("canceling statement due to statement timeout"),
                                   DatabaseUnavailable("the database went away")])
@pytest.mark.parametrize("command", OPERATOR_COMMANDS, ids=lambda c: " ".join(c[:2]))
def test_a_failure_while_running_exits_1_for_every_command(
    command: typing.List[str], error: Exception, database_url: str, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # What PostgreSQL refuses or loses once the command runs reaches every command the same way:
    # through run_query (the views) or with_store (the store).
    for module in ("sql", "invocations", "registry"):
        monkeypatch.setattr(f"restate_pg.cli.{module}.run_query", fail_with(error))
    for module in ("kv", "cron"):
        monkeypatch.setattr(f"restate_pg.cli.{module}.with_store", fail_with(error))
    assert main([*command, "--database-url", database_url]) == 1
    assert one_error_line(capsys.readouterr().err) == str(error)


@pytest.mark.parametrize("command", [*OPERATOR_COMMANDS, ["migrate"], ["worker", "app:app"], ["serve", "app:app"]],
                         ids=lambda c: " ".join(c[:2]))
def test_an_unreachable_database_exits_2_for_every_command(
    command: typing.List[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*command, "--database-url", UNREACHABLE]) == 2
    assert "cannot connect" in one_error_line(capsys.readouterr().err)


@pytest.mark.parametrize("command", OPERATOR_COMMANDS, ids=lambda c: " ".join(c[:2]))
def test_no_database_configured_exits_2_for_every_command(
    command: typing.List[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    assert main(command) == 2
    assert one_error_line(capsys.readouterr().err).startswith("no database configured")


@pytest.mark.parametrize("argv", [["sql"], ["sql", "SELECT 1", "--timeout", "0"], ["invocations", "list", "--limit", "0"],
                                  ["kv", "get"], ["cron"], ["nope"]])
def test_usage_errors_exit_2_as_argparse_does(argv: typing.List[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    assert f"{ERROR_PREFIX}" in capsys.readouterr().err


def test_a_query_postgresql_refuses_exits_1_as_the_operator_commands_failures_do(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["sql", "--database-url", database_url, "SELECT * FROM nowhere"]) == 1
    captured = capsys.readouterr()
    assert 'relation "nowhere" does not exist' in one_error_line(captured.err)
    assert captured.out == ""
