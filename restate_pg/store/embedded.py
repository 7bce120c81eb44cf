"""A private PostgreSQL for development, so that `restate-pg dev` works with nothing installed.

It runs the server binaries shipped by the `pgserver` package, listening on a unix socket inside
the data directory only (no TCP port, nothing to collide with). Data persist between runs; delete
the directory to start afresh. This is for development and tests, not for production.
"""

from __future__ import annotations

import contextlib
import json
import logging
import subprocess
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from restate_pg.core.errors import DatabaseUnavailable

if TYPE_CHECKING:
    from collections.abc import Iterator
    from types import TracebackType

__all__ = ["DEFAULT_DATA_DIR", "EmbeddedPostgres", "start_embedded"]

#: Where `start_embedded` keeps its data by default, relative to the current directory.
DEFAULT_DATA_DIR = Path(".restate-pg") / "pgdata"


class EmbeddedPostgres:
    """A running embedded server: `url` to connect to it, `data_dir` where it lives, `stop()`."""

    def __init__(self, server: Any, data_dir: Path) -> None:
        self._server = server
        self.data_dir = data_dir
        self.url: str = server.get_uri()
        self._stopped = False

    def stop(self) -> None:
        """Stop the server, unless another process still uses the same data directory.

        Safe to call more than once; it is also called at interpreter exit.
        """
        if self._stopped:
            return
        self._stopped = True
        with _quiet():
            self._server.cleanup()

    def __enter__(self) -> EmbeddedPostgres:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<EmbeddedPostgres data_dir={str(self.data_dir)!r} url={self.url!r}>"


def start_embedded(data_dir: Path | None = None) -> EmbeddedPostgres:
    """Start (or attach to) the embedded PostgreSQL keeping its data in `data_dir`.

    `data_dir` defaults to `./.restate-pg/pgdata`; it and its parents are created if needed. The
    first start runs initdb, which takes a few seconds. Raises `DatabaseUnavailable` if the server
    cannot be started, pointing at its log file.
    """
    path = (data_dir if data_dir is not None else DEFAULT_DATA_DIR).expanduser().resolve()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DatabaseUnavailable(
            f"cannot create the embedded PostgreSQL data directory {path}: {exc.strerror}"
        ) from exc
    logger = logging.getLogger("pgserver")
    if logger.level == logging.NOTSET:
        # Its atexit hook logs at INFO outside any _quiet() block; the user may still opt in.
        logger.setLevel(logging.WARNING)
    with _quiet():
        try:
            import pgserver
        except ImportError as exc:  # pragma: no cover - it is a dependency of restate-pg
            raise DatabaseUnavailable(
                "the embedded PostgreSQL needs the 'pgserver' package (pip install pgserver)"
            ) from exc
        _forget_dead_users(pgserver, path)
        try:
            server = pgserver.get_server(path, cleanup_mode="stop")
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
            raise DatabaseUnavailable(
                f"cannot start the embedded PostgreSQL in {path} ({type(exc).__name__}); "
                f"see {path / 'log'}"
            ) from exc
    return EmbeddedPostgres(server, path)


def _forget_dead_users(pgserver: Any, data_dir: Path) -> None:
    """Drop processes that no longer exist from pgserver's list of the server's users.

    pgserver stops the server when its last user exits, but a user killed without clean-up (say
    by SIGKILL) stays listed forever, and the server would then never be stopped again.
    """
    import psutil

    users = data_dir / ".handle_pids.json"
    lock = getattr(getattr(pgserver, "PostgresServer", None), "_lock", None)
    with lock if lock is not None else contextlib.nullcontext():
        try:
            pids = json.loads(users.read_text())
        except (OSError, ValueError):
            return
        alive = [pid for pid in pids if isinstance(pid, int) and psutil.pid_exists(pid)]
        if alive != pids:
            users.write_text(json.dumps(alive))


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence pgserver: its import warns about XDG_RUNTIME_DIR and it logs server logs on failure.

    Our own errors point at the server's log file instead.
    """
    logger = logging.getLogger("pgserver")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)
