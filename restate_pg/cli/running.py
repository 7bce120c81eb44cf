"""What the long-running commands (worker, serve, dev) share: logging, the runtime's entry points,
and stopping on a signal."""

from __future__ import annotations

import asyncio
import functools
import gc
import importlib
import os
import signal
import sys
from collections.abc import Coroutine
from typing import Any, Callable, Dict, Optional

from restate_pg.cli.errors import EXIT_FAILURE, PROG, CLIError

#: Signals that stop a long-running command gracefully.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def configure_logging(level: str, log_format: str = "text") -> None:
    from restate_pg.observability import logs

    logs.configure(level, log_format)


#: CPython's collector runs a young-generation pass every 700 net allocations of containers; a
#: serving process allocates thousands per second (frames, futures, journal rows), so passes ran
#: every few invocations and an older-generation pass now and then walked everything alive.
GC_YOUNG_THRESHOLD = 10_000
#: ...but a pass over 10,000 young objects is a pause a lone caller waits through: with fewer
#: attempts than BUSY_ATTEMPTS running, passes come at CPython's default and stay short.
GC_IDLE_YOUNG_THRESHOLD = 700
BUSY_ATTEMPTS = 8


def tune_gc(load: Optional[Callable[[], int]] = None) -> None:
    """For the CLI's own serving processes (never an application's, which mounts the router in
    its own): what startup made (modules, the app, the routes) is frozen out of every future
    collection, and young collections run less often: a sixth less CPU per invocation in this
    process (bench/README.md, "TypeScript handlers"); garbage in cycles lives a little longer.
    With `load` (the attempts running), the young threshold follows it, checked as each
    collection starts: sequential calls' p99 about 1 ms lower at the default threshold, calls at
    concurrency 32 and bursts of sends 4-12 % faster at the high one (bench/README.md, item 24)."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, middle, old)
    if load is not None:
        gc.callbacks.append(functools.partial(_follow_load, load))


def _follow_load(load: Callable[[], int], phase: str, info: Dict[str, int]) -> None:
    if phase != "start":
        return
    young, middle, old = gc.get_threshold()
    wanted = GC_YOUNG_THRESHOLD if load() >= BUSY_ATTEMPTS else GC_IDLE_YOUNG_THRESHOLD
    if young != wanted:
        gc.set_threshold(wanted, middle, old)


def import_runtime(module: str, name: str) -> Any:
    """`module.name`, imported only by the command that runs it (the CLI's other commands start
    without the worker's or the ingress's imports); an installation lacking it fails in one line."""
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise CLIError(
            f"this installation of restate-pg lacks {module}.{name} ({exc})", EXIT_FAILURE
        ) from exc


def run_until_signalled(coro: Coroutine[Any, Any, Any]) -> int:
    """Run `coro`; SIGINT or SIGTERM cancels it (a graceful stop), a second one exits at once."""

    async def runner() -> int:
        loop = asyncio.get_running_loop()
        task = asyncio.ensure_future(coro)
        received: list[int] = []

        def on_signal(signum: int) -> None:
            if received:
                print(f"{PROG}: stopping now", file=sys.stderr, flush=True)
                os._exit(128 + signum)
            received.append(signum)
            print(
                f"{PROG}: stopping (in-flight invocations are handed back to other workers; send the signal again to quit now)",
                file=sys.stderr,
                flush=True,
            )
            task.cancel()

        installed = []
        for signum in STOP_SIGNALS:
            try:
                loop.add_signal_handler(signum, on_signal, signum)
                installed.append(signum)
            except (NotImplementedError, RuntimeError):  # Windows: Ctrl-C still interrupts
                pass
        try:
            await task
        except asyncio.CancelledError:
            if not received:
                raise
        finally:
            for signum in installed:
                loop.remove_signal_handler(signum)
        return 0

    return asyncio.run(runner())
