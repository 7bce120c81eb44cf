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
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from restate_pg.core.errors import DatabaseUnavailable

if TYPE_CHECKING:
    from collections.abc import Iterator
    from types import TracebackType

__all__ = ["DEFAULT_DATA_DIR", "RECORD", "EmbeddedPostgres", "Recorded", "read_record", "start_embedded"]

#: Where `start_embedded` keeps its data by default, relative to the current directory.
DEFAULT_DATA_DIR = Path(".restate-pg") / "pgdata"
#: Where `restate-pg dev` records the embedded server it runs, relative to its current directory,
#: so that the operator commands run in the same directory find it without a URL.
RECORD = Path(".restate-pg") / "embedded.json"


class EmbeddedPostgres:
    """A running embedded server: `url` to connect to it, `data_dir` where it lives, `stop()`."""

    def __init__(self, server: Any, data_dir: Path, *, reused_orphan: bool = False) -> None:
        self._server = server
        self.data_dir = data_dir
        self.url: str = server.get_uri()
        #: whether the server was already running, left by a process killed without clean-up
        self.reused_orphan = reused_orphan
        self._stopped = False

    def record(self, record: Path = RECORD) -> Path:
        """Write the server's URL and data directory to `record` (a JSON file), for `read_record`."""
        path = record.expanduser().resolve()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"url": self.url, "data_dir": str(self.data_dir)}) + "\n")
        return path

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
    with _quiet() as failed_commands:
        try:
            import pgserver
        except ImportError as exc:  # pragma: no cover - it is a dependency of restate-pg
            raise DatabaseUnavailable(
                "the embedded PostgreSQL needs the 'pgserver' package (pip install pgserver)"
            ) from exc
        orphaned = _forget_dead_users(pgserver, path)
        try:
            server = pgserver.get_server(path, cleanup_mode="stop")
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
            said = " ".join(failed_commands[-1].splitlines()[-3:]) if failed_commands else ""
            raise DatabaseUnavailable(
                f"cannot start the embedded PostgreSQL in {path} ({type(exc).__name__}"
                + (f": {said}" if said else "") + f"); see {path / 'log'}"
            ) from exc
    return EmbeddedPostgres(server, path, reused_orphan=orphaned)


@dataclass(frozen=True)
class Recorded:
    """The embedded server `restate-pg dev` recorded: its URL and data directory."""

    url: str
    data_dir: Path
    record: Path

    def running(self) -> bool:
        """Whether a server runs on the data directory now (it stops when dev stops)."""
        return _postmaster_pid(self.data_dir) is not None


def read_record(record: Path = RECORD) -> Recorded | None:
    """The embedded server recorded in `record`, or None when there is no (readable) record."""
    try:
        content = json.loads(record.read_text())
        return Recorded(str(content["url"]), Path(content["data_dir"]), record.resolve())
    except (OSError, ValueError, TypeError, KeyError):
        return None


def _alive(pid: object) -> bool:
    """Whether `pid` is a live process: not gone, and not a zombie (killed, not yet reaped)."""
    import psutil

    if not isinstance(pid, int):
        return False
    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except psutil.Error:
        return False


def _postmaster_pid(data_dir: Path) -> int | None:
    """The pid of the server running on `data_dir`, from its postmaster.pid, if it is alive."""
    try:
        pid = int((data_dir / "postmaster.pid").read_text().splitlines()[0])
    except (OSError, ValueError, IndexError):
        return None
    return pid if _alive(pid) else None


def _forget_dead_users(pgserver: Any, data_dir: Path) -> bool:
    """Drop processes that no longer live from pgserver's list of the server's users; True when
    the server runs with no live user left: an orphan, which this process now adopts.

    pgserver stops the server when its last user exits, but a user killed without clean-up (say
    by SIGKILL) stays listed, and the server would then never be stopped again. A killed process
    its parent has not reaped yet (a zombie) is as dead as a vanished one.
    """
    users = data_dir / ".handle_pids.json"
    lock = getattr(getattr(pgserver, "PostgresServer", None), "_lock", None)
    with lock if lock is not None else contextlib.nullcontext():
        try:
            pids = json.loads(users.read_text())
        except (OSError, ValueError):
            pids = []
        alive = [pid for pid in pids if _alive(pid)] if isinstance(pids, list) else []
        if alive != pids:
            users.write_text(json.dumps(alive))
        return not alive and _postmaster_pid(data_dir) is not None


@contextlib.contextmanager
def _quiet() -> Iterator[list[str]]:
    """Silence pgserver: its import warns about XDG_RUNTIME_DIR and it logs server logs on failure.

    Our own errors point at the server's log file instead, and quote what a failed command (initdb,
    which runs before there is a log file) wrote to its stderr: the list this yields collects it.
    """
    logger = logging.getLogger("pgserver")
    level, propagate = logger.level, logger.propagate
    failures: list[str] = []
    capture = _FailedCommands(failures)
    logger.setLevel(logging.ERROR)
    logger.propagate = False
    logger.addHandler(capture)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield failures
    finally:
        logger.removeHandler(capture)
        logger.setLevel(level)
        logger.propagate = propagate


class _FailedCommands(logging.Handler):
    """Keeps the stderr of each command pgserver reports as failed (its ERROR record holds it)."""

    def __init__(self, into: list[str]) -> None:
        super().__init__(logging.ERROR)
        self.into = into

    def emit(self, record: logging.LogRecord) -> None:
        _, found, rest = record.getMessage().partition("stderr:\n")
        if found and (stderr := rest.rpartition("\n---")[0].strip()):
            self.into.append(stderr)
