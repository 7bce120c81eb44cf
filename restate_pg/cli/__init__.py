"""The `restate-pg` command line (`restate_pg.cli.main:main`); `python -m restate_pg` runs it too."""

from restate_pg.cli.main import CLIError, load_app, main

__all__ = ["CLIError", "load_app", "main"]
