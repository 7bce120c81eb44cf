"""The benchmark database: creating it afresh, and the server-side counters a run reads."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from bench import procs
from bench.loadgen import BenchError

#: An autocommit connection to the benchmark database; rows as tuples.
Conn = psycopg.Connection[tuple[Any, ...]]


def scalar(conn: Conn, query: str, params: tuple[Any, ...] = ()) -> Any:
    """The first column of the first row of `query`'s result."""
    row = conn.execute(query, params).fetchone()
    if row is None:
        raise LookupError(f"no row from {query!r}")
    return row[0]


class Database:
    """A database the benchmark owns: dropped and created again for every run."""

    def __init__(self, url: str) -> None:
        params = conninfo_to_dict(url)
        self.url = url
        self.name = str(params.get("dbname") or "")
        if "bench" not in self.name:
            # It is dropped at the start of every run: refuse anything that looks like real data.
            raise BenchError(
                f"the benchmark drops and recreates its database; {self.name!r} has no 'bench' in its name"
            )
        self._admin = make_conninfo(url, dbname="postgres")

    def recreate(self) -> None:
        with psycopg.connect(self._admin, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(self.name)))
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.name)))

    def connect(self) -> Conn:
        return psycopg.connect(self.url, autocommit=True)


def server_version(conn: Conn) -> str:
    return str(scalar(conn, "SHOW server_version"))


def db_now(conn: Conn) -> datetime:
    now: datetime = scalar(conn, "SELECT now()")
    return now


def wal_lsn(conn: Conn) -> str:
    return str(scalar(conn, "SELECT pg_current_wal_lsn()"))


def wal_bytes(conn: Conn, start: str, end: str) -> int:
    return int(scalar(conn, "SELECT pg_wal_lsn_diff(%s, %s)", (end, start)))


@dataclass(frozen=True)
class Commits:
    ours: int  # xact_commit of the benchmark database
    others: int  # xact_commit of every other database on the server


def commits(conn: Conn, dbname: str) -> Commits:
    """pg_stat_database.xact_commit. Backends report it lazily (at most once a second, and an
    idle backend up to 10 s late), so read it after `settle_s` of quiet on both sides."""
    ours, others = conn.execute(
        "SELECT coalesce(sum(xact_commit) FILTER (WHERE datname = %s), 0),"
        "       coalesce(sum(xact_commit) FILTER (WHERE datname IS DISTINCT FROM %s), 0)"
        "  FROM pg_stat_database",
        (dbname, dbname),
    ).fetchone() or (0, 0)
    return Commits(int(ours), int(others))


STATS_SETTLE_S = 11.0  # PGSTAT_IDLE_INTERVAL (10 s) plus a margin


@dataclass(frozen=True)
class PostgresCpu:
    """CPU seconds so far of PostgreSQL's processes, per pid, for a delta over a window."""

    ours: dict[int, float]  # backends of the benchmark database and the server's own processes
    server_s: float  # every process of the server, including children it has reaped


def postgres_cpu(conn: Conn, dbname: str) -> PostgresCpu | None:
    """Read from /proc; None when the server does not run on this machine."""
    own_pid = int(scalar(conn, "SELECT pg_backend_pid()"))
    own = procs.read_stat(own_pid)
    if own is None:
        return None
    postmaster = own.ppid
    activity = conn.execute("SELECT pid, datname FROM pg_stat_activity").fetchall()
    stats = procs.all_stats()
    if postmaster not in stats:
        return None
    server = stats[postmaster].busy_s + stats[postmaster].reaped_children_s + sum(
        s.busy_s for s in stats.values() if s.ppid == postmaster
    )
    ours = {
        int(pid): stats[pid].busy_s
        for pid, datname in activity
        # Our own monitoring backend is left out; background processes have no datname.
        if pid != own_pid and pid in stats and datname in (None, dbname)
    }
    ours[postmaster] = stats[postmaster].busy_s
    return PostgresCpu(ours=ours, server_s=server)


def cpu_delta(before: PostgresCpu, after: PostgresCpu) -> tuple[float, int]:
    """CPU seconds of our PostgreSQL processes between two readings, and how many of them exited
    in between (their last moments are not counted)."""
    spent = sum(busy - before.ours.get(pid, 0.0) for pid, busy in after.ours.items())
    exited = sum(1 for pid in before.ours if pid not in after.ours)
    return spent, exited
