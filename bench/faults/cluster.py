"""A PostgreSQL cluster of the suite's own, on a free port, that it may restart, stop and break.

The faults include stopping and restarting the server and terminating backends, so the suite never
touches a shared server (such as the one at 5432 that other test runs use): it runs `initdb` in a
temporary directory and `pg_ctl` on it. The binaries are the system's PostgreSQL (Debian's
/usr/lib/postgresql/N/bin), else those bundled with `pgserver` (a dependency of restate-pg), so
that the suite also runs on a laptop without PostgreSQL installed. PostgreSQL refuses to run as
root: as root, the cluster's files belong to the `postgres` user (or pgserver's own) and its
commands run as that user.
"""

from __future__ import annotations

import os
import pwd
import random
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import psycopg

from bench.loadgen import BenchError
from bench.systems import free_port

_TOOLS = ("initdb", "pg_ctl", "postgres")

#: Server settings of the cluster. fsync is off: the suite kills processes and PostgreSQL itself,
#: never the operating system, so the page cache keeps every committed write across a crash
#: (`pg_ctl stop -m immediate` is a crash of PostgreSQL) while the shared disk is spared the
#: flushes. synchronous_commit stays on, so a commit acknowledged to a client is in the WAL.
_SETTINGS = {
    "listen_addresses": "127.0.0.1",
    "fsync": "off",
    "max_connections": "300",
    "log_min_messages": "warning",
}


def find_bindir() -> Path:
    """The newest system PostgreSQL's bin directory that has the tools, else pgserver's."""
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin"),
                        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0, reverse=True)
    for bindir in candidates:
        if all((bindir / tool).is_file() for tool in _TOOLS):
            return bindir
    try:
        import pgserver._commands as pgserver_commands
    except ImportError:
        pass
    else:
        return Path(pgserver_commands.POSTGRES_BIN_PATH)
    raise BenchError("no PostgreSQL binaries found: install postgresql (apt-get install postgresql) "
                     "or restate-pg's dependencies (pgserver ships its own)")


def _server_user() -> pwd.struct_passwd | None:
    """Whom to run PostgreSQL as: None (ourselves) unless we are root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "pgserver"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    from pgserver.utils import ensure_user_exists  # creates the `pgserver` user, as pgserver does

    entry = ensure_user_exists("pgserver")
    assert entry is not None
    return entry


@dataclass
class Cluster:
    """One PostgreSQL server in a temporary directory. `url(db)` reaches a database on it."""

    root: Path
    port: int
    bindir: Path
    user: pwd.struct_passwd | None

    @classmethod
    def create(cls) -> Cluster:
        """initdb a new cluster in a fresh temporary directory and start it."""
        bindir = find_bindir()
        user = _server_user()
        root = Path(tempfile.mkdtemp(prefix="restate-pg-faults-"))
        if user is not None:
            os.chown(root, user.pw_uid, user.pw_gid)
            if "pgserver" in str(bindir):  # let that user reach the binaries inside our venv
                from pgserver.utils import ensure_prefix_permissions

                ensure_prefix_permissions(bindir)
        cluster = cls(root=root, port=free_port(), bindir=bindir, user=user)
        cluster._run("initdb", "-D", str(cluster.data), "-U", "postgres", "-A", "trust", "-E", "UTF8",
                     "--no-sync", "--no-instructions")
        cluster.start()
        return cluster

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def log(self) -> Path:
        return self.root / "postgresql.log"

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"

    def _run(self, tool: str, *args: str, timeout_s: float = 120.0) -> None:
        kwargs = {} if self.user is None else {"user": self.user.pw_uid, "group": self.user.pw_gid}
        out = subprocess.run([str(self.bindir / tool), *args], capture_output=True, text=True,
                             timeout=timeout_s, cwd=self.root, **kwargs)  # type: ignore[call-overload]
        if out.returncode != 0:
            raise BenchError(f"{tool} {' '.join(args[:3])} failed ({out.returncode}): "
                             f"{(out.stderr or out.stdout).strip()[:800]}")

    def start(self) -> None:
        """Start the server and return once it accepts connections (`pg_ctl -w`)."""
        options = " ".join([f"-p {self.port}", f"-k {self.data}", *(f"-c {k}={v}" for k, v in _SETTINGS.items())])
        self._run("pg_ctl", "start", "-D", str(self.data), "-w", "-t", "60", "-l", str(self.log), "-o", options)

    def stop(self, mode: str = "fast") -> None:
        """Stop the server: `fast` (clients disconnected, a clean shutdown checkpoint) or
        `immediate` (every server process quits at once: a crash, recovered from the WAL on start)."""
        self._run("pg_ctl", "stop", "-D", str(self.data), "-w", "-t", "60", "-m", mode)

    def restart(self) -> None:
        """What an operator's restart does: a fast shutdown, then start."""
        self.stop("fast")
        self.start()

    def server_version(self) -> str:
        with psycopg.connect(self.url(), autocommit=True) as conn:
            row = conn.execute("SHOW server_version").fetchone()
        return str(row[0]) if row else "unknown"

    def create_database(self, name: str) -> None:
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')

    def terminate_backends(self, dbname: str, app_prefix: str, count: int, rng: random.Random) -> list[str]:
        """`pg_terminate_backend` on `count` random backends of `dbname` whose application_name
        starts with `app_prefix`; returns the names of those terminated."""
        with psycopg.connect(self.url(), autocommit=True) as conn:
            rows = conn.execute(
                "SELECT pid, application_name FROM pg_stat_activity"
                " WHERE datname = %s AND application_name LIKE %s AND pid <> pg_backend_pid()",
                (dbname, app_prefix + "%")).fetchall()
            chosen = rng.sample(sorted(rows), min(count, len(rows)))
            terminated = []
            for pid, name in chosen:
                row = conn.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone()
                if row and row[0]:
                    terminated.append(str(name))
        return terminated

    def destroy(self) -> None:
        """Stop the server (if it runs) and delete its directory."""
        try:
            self.stop("immediate")
        except BenchError:
            pass  # not running
        shutil.rmtree(self.root, ignore_errors=True)

    def describe(self) -> str:
        version = self.bindir.parent.name if "postgresql" in str(self.bindir) else "pgserver's"
        return f"PostgreSQL ({version} binaries in {self.bindir}) on 127.0.0.1:{self.port}, data in {self.data}"
