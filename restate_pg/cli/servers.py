"""HTTP servers with uvicorn: the ingress and the admin API of `restate-pg dev` and `serve`, and the
server of the test harness (`restate_pg.testing.harness.serve_api`), built and started the same way.

Three things are easy to get wrong with uvicorn and are done once here: its logs (with `--log-format
json` its records must go through the root logger's handler, not uvicorn's own), its start and stop
lines (the same unlabelled lines from each server of a process: we drop them and say once which
server listens where), and its signals (only one server of a process may capture SIGINT and
SIGTERM; the others, and a server inside a test runner, must leave them alone).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import typing

from restate_pg.cli.errors import EXIT_FAILURE, CLIError
from restate_pg.cli.http_protocol import joining_protocol
from restate_pg.cli.output import info
from restate_pg.cli.running import STOP_SIGNALS, tune_gc

if typing.TYPE_CHECKING:
    import uvicorn
    from fastapi import FastAPI

__all__ = ["announce_urls", "running", "serve", "uvicorn_server"]

#: uvicorn's lifecycle lines (its message templates), which every server of a process repeats
#: word for word; `serve` says which server listens where instead.
_LIFECYCLE = frozenset({
    "Started server process [%d]", "Finished server process [%d]", "Shutting down",
    "Waiting for application startup.", "Application startup complete.",
    "Waiting for application shutdown.", "Application shutdown complete.",
})


class _DropLifecycle(logging.Filter):
    """Drops uvicorn's lifecycle lines; its warnings, errors and other lines pass."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.levelno == logging.INFO and record.msg in _LIFECYCLE)


def _drop_lifecycle_lines() -> None:
    """Install `_DropLifecycle` on uvicorn's logger once (after uvicorn configured its logging)."""
    logger = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _DropLifecycle) for f in logger.filters):
        logger.addFilter(_DropLifecycle())


def uvicorn_server(
    api: FastAPI, *, log_level: str, log_format: str = "text", own_signals: bool = True, **config: typing.Any
) -> uvicorn.Server:
    """A uvicorn server for `api` (`config`: more of `uvicorn.Config`'s keywords). Without
    `own_signals` it leaves SIGINT and SIGTERM to whoever runs it: another server, a test runner."""
    import uvicorn

    # JSON logs: uvicorn's records go through the root logger's handler rather than its own
    log_config = None if log_format == "json" else uvicorn.config.LOGGING_CONFIG
    config.setdefault("http", joining_protocol(_http_protocol()))
    # uvicorn builds each access line's arguments before its logger drops it: none below INFO
    config.setdefault("access_log", uvicorn.config.LOG_LEVELS.get(log_level.lower(), logging.INFO) <= logging.INFO)
    server = uvicorn.Server(uvicorn.Config(api, log_level=log_level, log_config=log_config, **config))
    _drop_lifecycle_lines()
    if not own_signals:
        server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign]
    return server


def _http_protocol() -> typing.Type[asyncio.Protocol]:
    """The HTTP/1.1 protocol uvicorn's "auto" picks: httptools' when it is installed, else h11's."""
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
        return HttpToolsProtocol
    except ImportError:
        from uvicorn.protocols.http.h11_impl import H11Protocol
        return H11Protocol


def _attempts_running(router: typing.Any) -> typing.Optional[typing.Callable[[], int]]:
    """How many attempts the router's engine runs now, if it runs any (a bare gateway runs none)."""
    slots = getattr(getattr(router, "engine", None), "slots", None)
    return None if slots is None else (lambda: slots.active)


@contextlib.asynccontextmanager
async def running(server: uvicorn.Server, sock: socket.socket | None = None) -> typing.AsyncIterator[int]:
    """Run `server` in this event loop (on `sock`, else on its configured host and port) while the
    block runs; yields the port it listens on once it accepts connections, and stops it at the end."""
    task = asyncio.ensure_future(server.serve(sockets=[sock] if sock is not None else None))
    while not server.started:
        if task.done():
            task.result()  # its failure, if it failed
            raise RuntimeError("the HTTP server stopped before it started")
        await asyncio.sleep(0.01)
    port: int = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield port
    finally:
        server.should_exit = True
        await task


def serve(
    router: typing.Any, *, host: str, port: int, log_level: str, admin_port: int | None = None, log_format: str = "text",
    supervisor: socket.socket | None = None,
) -> int:
    """Serve the ingress `router` on host:port (and the admin API of its engine on `admin_port`)
    until SIGINT or SIGTERM; the exit status: 0 after a graceful stop, 1 if it never started.

    `supervisor`: this process is one of `--processes N` (`cli/processes.py`): it shares the ports
    with its siblings (SO_REUSEPORT), tells the supervisor on this channel when it serves instead of
    printing the URLs, and stops as on SIGTERM when the channel closes (the supervisor is gone)."""
    import fastapi

    from restate_pg.admin.sockets import listening_socket

    reuse_port = supervisor is not None
    try:  # bound here, so that a port in use is one clear line rather than uvicorn's exit
        ingress_socket = listening_socket(host, port, reuse_port=reuse_port)
    except OSError as exc:
        raise CLIError(f"cannot listen on {host}:{port} ({exc.strerror})") from None
    from restate_pg.ingress.asgi import hot_paths

    api = fastapi.FastAPI(title="restate-pg ingress")
    api.include_router(router)
    # the invocation paths skip FastAPI's per-request machinery; the rest, and the lifespan, go through it
    server = uvicorn_server(hot_paths(router, api), host=host, port=port, log_level=log_level, log_format=log_format)
    admin: uvicorn.Server | None = None
    admin_socket = _bind(host, admin_port, reuse_port) if admin_port is not None else None
    # read now: a SIGTERM while starting closes the sockets before the URLs are announced
    ports = (ingress_socket.getsockname()[1], None if admin_socket is None else admin_socket.getsockname()[1])
    if admin_socket is not None:
        from restate_pg.admin import create_admin_app

        admin_api = create_admin_app(router.engine)
        # the ingress server's signals stop both
        admin = uvicorn_server(admin_api, log_level=log_level, log_format=log_format, own_signals=False, lifespan="off")

    async def serve_both() -> None:
        async with contextlib.AsyncExitStack() as stack:
            if admin is not None:
                await stack.enter_async_context(running(admin, admin_socket))
            ingress = asyncio.ensure_future(server.serve(sockets=[ingress_socket]))
            while not server.started and not ingress.done():
                await asyncio.sleep(0.01)
            if server.started:
                tune_gc(_attempts_running(router))
            if server.started and supervisor is not None:
                await _report_to(supervisor, server)
            elif server.started:  # once each, now that they answer
                announce_urls(host, *ports)
            await ingress

    # uvicorn handles SIGINT and SIGTERM itself (stops accepting, drains, runs shutdown hooks),
    # then re-raises the signal to the handler it found. Ours only notes it, so a SIGTERM does
    # not kill the process before the caller's clean-up (say, of the embedded PostgreSQL), and a
    # graceful stop exits 0, as the worker's does.
    received: list[int] = []
    previous = {
        signum: signal.signal(signum, lambda signum, frame: received.append(signum))
        for signum in STOP_SIGNALS
    }
    try:
        with asyncio.Runner(loop_factory=server.config.get_loop_factory()) as runner:
            runner.run(serve_both())
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if server.started and supervisor is None:
        info("stopped the ingress" + (" and the admin API" if admin is not None else ""))
    return 0 if server.started or received else EXIT_FAILURE


def announce_urls(host: str, ingress_port: int, admin_port: int | None) -> None:
    """Say where the ingress (and the admin API and UI) answer: once, when they do."""
    info(f"ingress on http://{host}:{ingress_port}")
    if admin_port is not None:
        info(f"admin API on http://{host}:{admin_port}")
        info(f"operator UI on http://{host}:{admin_port}/ui")


async def _report_to(supervisor: socket.socket, server: uvicorn.Server) -> None:
    """Tell the supervisor this process serves, and stop gracefully when it goes away (its end of
    the channel closes: it stopped, or was killed), as a SIGTERM would."""
    loop = asyncio.get_running_loop()
    supervisor.setblocking(False)
    await loop.sock_sendall(supervisor, b"ready\n")

    async def watch() -> None:
        with contextlib.suppress(OSError):
            while await loop.sock_recv(supervisor, 64):
                pass
        server.should_exit = True

    watcher = asyncio.ensure_future(watch())
    _WATCHERS.add(watcher)  # a strong reference: the loop keeps only weak ones
    watcher.add_done_callback(_WATCHERS.discard)


#: The watches of the supervisor's channel running in this process.
_WATCHERS: set[asyncio.Future[None]] = set()


def _bind(host: str, port: int, reuse_port: bool = False) -> socket.socket | None:
    """A listening socket for the admin API, or None (with a warning) when the port is taken."""
    from restate_pg.admin.sockets import listening_socket

    try:
        return listening_socket(host, port, reuse_port=reuse_port)
    except OSError as exc:
        info(f"admin API not served: cannot listen on {host}:{port} ({exc.strerror})")
        return None
