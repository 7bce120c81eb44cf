"""Serve app.py's services with hypercorn on 127.0.0.1:PORT, HTTP/2 cleartext (h2c) and HTTP/1.1 on
the same port: `python -m tests.endpoints.python.serve PORT`.

hypercorn's own command runs the server in a child process; `--workers 0` keeps it in one, but
then never stops on SIGTERM: restate-sdk's ASGI app takes the event loop's SIGTERM handler for
its own shutdown hooks (asyncio keeps one handler per signal), replacing hypercorn's. Here the
server runs in this process and stops at once on SIGTERM (through restate-sdk's hook registry)
or SIGINT, so that tests can stop it cleanly, or crash it with SIGKILL.
"""

from __future__ import annotations

import asyncio
import signal
import sys

from hypercorn.asyncio import serve
from hypercorn.config import Config
from restate.server import install_shutdown_hook

from tests.endpoints.python.app import app


async def main(port: int) -> None:
    config = Config()
    config.bind = [f"127.0.0.1:{port}"]
    config.graceful_timeout = 0.0
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    install_shutdown_hook(loop, stop.set, signal.SIGTERM)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    await serve(app, config, shutdown_trigger=stop.wait)  # type: ignore[arg-type]


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
