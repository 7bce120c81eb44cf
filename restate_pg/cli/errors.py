"""How the `restate-pg` command fails: one line on stderr and an exit status.

The exit statuses, and which failure gets which, are described once, in `restate_pg.cli.main`:
2 when the command cannot run as given (raised here as a `CLIError`, whose status is 2 unless it
says otherwise), 1 when it ran and failed.
"""

from __future__ import annotations

import argparse

from restate_pg.validation import InvalidInput, check_text

PROG = "restate-pg"

#: Exit status when the command cannot run as given: usage, an argument in the wrong form,
#: configuration, a database not reachable or not migrated when the command starts.
EXIT_USAGE = 2
#: Exit status for failures while running.
EXIT_FAILURE = 1
#: Exit status after Ctrl-C, as a shell reports a process killed by SIGINT.
EXIT_INTERRUPTED = 130


class CLIError(Exception):
    """A failure to report as one line, `restate-pg: error: <message>`, exiting with `exit_code`."""

    def __init__(self, message: str, exit_code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def check_arguments(args: argparse.Namespace) -> None:
    """Every argument is a name, an id, a key or a query PostgreSQL reads as text: none may hold a
    NUL. A shell cannot pass one, but `main(argv)` can be given one; it fails in one line."""
    for dest, value in vars(args).items():
        for text in value if isinstance(value, list) else [value]:
            if isinstance(text, str):
                try:
                    check_text(f"argument {dest}", text)
                except InvalidInput as exc:
                    raise CLIError(exc.message) from None
