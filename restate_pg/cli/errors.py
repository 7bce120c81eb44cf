"""How the `restate-pg` command fails: one line on stderr and an exit status."""

from __future__ import annotations

#: Exit status for problems found before starting (usage, configuration, database, schema).
EXIT_USAGE = 2
#: Exit status for failures while running.
EXIT_FAILURE = 1
EXIT_INTERRUPTED = 130


class CLIError(Exception):
    """A failure to report as one line, `restate-pg: error: <message>`, exiting with `exit_code`."""

    def __init__(self, message: str, exit_code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.exit_code = exit_code
