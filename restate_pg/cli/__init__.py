"""The `restate-pg` command line (`restate_pg.cli.main:main`); `python -m restate_pg` runs it too.

One module per command (see `restate_pg.cli.main`), and the small modules they share: `arguments`
(the parser and shared options), `store` (the database of a command), `output`, `errors`,
`loader` (MODULE:APP), `running` (signals, logging) and `servers` (uvicorn, also used by
`restate_pg.testing`).
"""

from restate_pg.cli.errors import CLIError
from restate_pg.cli.loader import load_app
from restate_pg.cli.main import main

__all__ = ["CLIError", "load_app", "main"]
