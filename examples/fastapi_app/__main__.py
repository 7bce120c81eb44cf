"""`python -m examples.fastapi_app`: migrate, then serve the shop with a worker in the process.

With no DATABASE_URL it starts an embedded PostgreSQL in ./.restate-pg/ (data kept between runs).
"""

from __future__ import annotations

import argparse
import os
import signal

import uvicorn

from examples.fastapi_app import db
from examples.fastapi_app.main import RUN_HANDLERS_ENV
from restate_pg.store.database import DATABASE_URL_ENV, resolve_database_url
from restate_pg.store.embedded import start_embedded


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m examples.fastapi_app", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--no-worker", action="store_true", help="run no handlers here: start `restate-pg worker` processes")
    args = parser.parse_args()

    url = resolve_database_url(None)
    embedded = None
    if url is None:
        embedded = start_embedded()
        url = embedded.url
        print(f"embedded PostgreSQL in {embedded.data_dir}")
    try:
        db.migrate(url)
        os.environ[DATABASE_URL_ENV] = url
        os.environ[RUN_HANDLERS_ENV] = "0" if args.no_worker else "1"
        # uvicorn stops gracefully on SIGINT/SIGTERM, then re-raises the signal to the handler it
        # found: let that one only note it, so that the embedded PostgreSQL is stopped below.
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: None)
        uvicorn.run("examples.fastapi_app.main:create_api", factory=True, host=args.host, port=args.port)
    finally:
        if embedded is not None:
            embedded.stop()


if __name__ == "__main__":
    main()
