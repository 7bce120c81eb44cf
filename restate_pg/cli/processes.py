"""`--processes N` of `restate-pg dev` and `serve`: N serving processes on one port, supervised.

One Python process saturates one core; a machine has more. The supervisor does once what a
deployment does once (`dev`: migrate, start the embedded PostgreSQL), reserves the ports, and
starts N children, each the same command as an ordinary process of its own (an ingress, and with
`dev` a worker) that binds its own listening socket on the shared port with SO_REUSEPORT: the
kernel spreads connections over them, and an invocation runs in the process that received it
(the local fast path of `services/submissions.py`); whatever one process cannot run at once goes
through PostgreSQL to any of them, as between separate workers.

A child that stops or dies after it served is started again; one that fails before it ever served
(the app does not import, the database refused it) stops them all, with its exit status. SIGINT or
SIGTERM to the supervisor is passed to every child, which drain as one process would; the
supervisor exits 0 once they all stopped. Each child holds one end of a socket pair whose other end
the supervisor keeps: it says "ready" on it when it serves, and stops gracefully when it closes, so
that children never outlive a supervisor killed with SIGKILL.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import socket
import sys
import time
import typing

from restate_pg.cli.arguments import engine_options, positive_int
from restate_pg.cli.errors import EXIT_FAILURE, CLIError
from restate_pg.cli.output import info
from restate_pg.cli.running import STOP_SIGNALS, configure_logging, import_runtime
from restate_pg.cli.servers import announce_urls, serve

#: A child that served at least this long is restarted at once when it dies; one dying sooner
#: waits this long first, so that a crash loop does not spin.
RESTART_PAUSE_S = 1.0


def add_processes(command: argparse.ArgumentParser) -> None:
    """`--processes N`, and the hidden `--supervised FD` a supervisor starts its children with."""
    command.add_argument(
        "--processes", type=positive_int, default=1, metavar="N",
        help="serving processes sharing the port (SO_REUSEPORT), each running what it receives; "
        "supervised: one that dies is restarted, SIGTERM stops them all (default: 1)",
    )
    command.add_argument("--supervised", type=int, metavar="FD", help=argparse.SUPPRESS)


def supervisor_channel(args: argparse.Namespace) -> socket.socket | None:
    """In a child, its end of the channel to the supervisor (None in a process on its own)."""
    if args.supervised is None:
        return None
    return socket.socket(fileno=args.supervised)


def serve_here(app: typing.Any, url: str, args: argparse.Namespace, admin_port: int | None,
               **router_options: typing.Any) -> int:
    """Serve `create_router(app, ...)` in this process (on its own, or as one of `--processes N`)
    until a signal; the exit status."""
    create_router = import_runtime("restate_pg.ingress", "create_router")
    configure_logging(args.log_level, args.log_format)
    router = create_router(app, database_url=url, schema=args.schema, **router_options, **engine_options(args))
    return serve(router, host=args.host, port=args.port, log_level=args.log_level, admin_port=admin_port,
                 log_format=args.log_format, supervisor=supervisor_channel(args))


def reserve_port(host: str, port: int) -> tuple[socket.socket, int]:
    """Hold host:port for the children (a bound SO_REUSEPORT socket that never listens, kept by
    the supervisor so that a restarted child finds the port still free); port 0: a free one.

    The port is first bound without SO_REUSEPORT, so that a port another program listens on
    (even with SO_REUSEPORT, another `--processes` say) is refused rather than shared."""
    from restate_pg.admin.sockets import bound_socket

    probe = bound_socket(host, port)  # OSError: in use
    port = probe.getsockname()[1]
    probe.close()
    held = bound_socket(host, port, reuse_port=True)
    return held, port


class Supervisor:
    """Runs `count` children of the command `argv`; `on_ready` is called once, when all first serve."""

    def __init__(
        self, argv: typing.Sequence[str], count: int, env: typing.Mapping[str, str],
        on_ready: typing.Callable[[Supervisor], None],
    ) -> None:
        self.argv = list(argv)
        self.count = count
        self.env = dict(env)
        self.on_ready = on_ready
        self.children: dict[int, _Child] = {}
        self.failed: int | None = None

    def run(self) -> int:
        """Start the children and keep them running until a signal; the exit status."""
        return asyncio.run(self._supervise())

    async def _supervise(self) -> int:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for signum in STOP_SIGNALS:
            loop.add_signal_handler(signum, stop.set)
        announcer = None
        try:
            for index in range(self.count):
                self.children[index] = await _Child.start(index, self.argv, self.env)
            announcer = asyncio.ensure_future(self._announce())
            while not stop.is_set() and self.failed is None:
                waits = {asyncio.ensure_future(child.process.wait()): child for child in self.children.values()}
                stopping = asyncio.ensure_future(stop.wait())
                done, pending = await asyncio.wait({stopping, *waits}, return_when=asyncio.FIRST_COMPLETED)
                for task in pending:
                    task.cancel()
                for task in done & set(waits):
                    await self._ended(waits[task], stop)
        finally:
            if announcer is not None:
                announcer.cancel()
            await self._stop_all()
            for signum in STOP_SIGNALS:
                loop.remove_signal_handler(signum)
        return self.failed if self.failed is not None else 0

    async def _announce(self) -> None:
        for child in list(self.children.values()):
            if not await asyncio.shield(child.ready):
                return
        self.on_ready(self)

    async def _ended(self, child: _Child, stop: asyncio.Event) -> None:
        status = child.process.returncode
        child.close()
        if stop.is_set():
            return
        if not child.ready.done() or not child.ready.result():
            info(f"serving process {child.index} (pid {child.process.pid}) exited with status {status} "
                 "before it served: stopping the others")
            self.failed = status if status else EXIT_FAILURE
            return
        info(f"serving process {child.index} (pid {child.process.pid}) exited with status {status}: restarting it")
        if time.monotonic() - child.started_at < RESTART_PAUSE_S:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), RESTART_PAUSE_S)
            if stop.is_set():
                return
        self.children[child.index] = await _Child.start(child.index, self.argv, self.env)

    async def _stop_all(self) -> None:
        """SIGTERM to every child, then wait for them (they drain)."""
        for child in self.children.values():
            child.terminate()
        await asyncio.gather(*(child.process.wait() for child in self.children.values()), return_exceptions=True)
        for child in self.children.values():
            child.close()


class _Child:
    """One serving process, its channel, and whether it said it serves."""

    def __init__(self, index: int, process: asyncio.subprocess.Process, channel: socket.socket) -> None:
        self.index = index
        self.process = process
        self.channel = channel
        self.started_at = time.monotonic()
        self.ready: asyncio.Future[bool] = asyncio.ensure_future(self._read_ready())

    @classmethod
    async def start(cls, index: int, argv: list[str], env: dict[str, str]) -> _Child:
        ours, theirs = socket.socketpair()
        ours.setblocking(False)
        try:
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "restate_pg", *argv, "--supervised", str(theirs.fileno()),
                pass_fds=(theirs.fileno(),), env=env,
                start_new_session=True,  # a terminal's Ctrl-C reaches the supervisor, which passes it on
            )
        finally:
            theirs.close()
        return cls(index, process, ours)

    async def _read_ready(self) -> bool:
        loop = asyncio.get_running_loop()
        with contextlib.suppress(OSError):
            return bool(await loop.sock_recv(self.channel, 64))
        return False

    def terminate(self) -> None:
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGTERM)

    def close(self) -> None:
        if not self.ready.done():
            self.ready.cancel()
        self.channel.close()


def supervise(
    args: argparse.Namespace, *, host: str, ports: typing.Sequence[tuple[str, int | None]],
    database_url: str,
) -> int:
    """Run `args.processes` children of this command (`args.argv`) on the ingress port `--port`
    and the admin port `--admin-port` in `ports` (None: not served), with `database_url`; say
    where they answer once all children serve. Returns the exit status."""
    held: list[socket.socket] = []
    chosen: dict[str, int] = {}
    extra: list[str] = []
    try:
        for flag, wanted in ports:
            if wanted is None:
                continue
            try:
                sock, port = reserve_port(host, wanted)
            except OSError as exc:
                raise CLIError(f"cannot listen on {host}:{wanted} ({exc.strerror})") from None
            held.append(sock)
            chosen[flag] = port
            extra += [flag, str(port)]

        def ready(supervisor: Supervisor) -> None:
            announce_urls(host, chosen["--port"], chosen.get("--admin-port"))
            pids = ", ".join(str(child.process.pid) for child in supervisor.children.values())
            info(f"{supervisor.count} serving processes (pids {pids})")

        env = {**os.environ, "DATABASE_URL": database_url}
        status = Supervisor([*args.argv, *extra, "--processes", "1"], args.processes, env, ready).run()
    finally:
        for sock in held:
            sock.close()
    info(f"stopped {args.processes} serving processes")
    return status
