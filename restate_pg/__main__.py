"""`python -m restate_pg`: the same as the `restate-pg` command."""

import sys

from restate_pg.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
