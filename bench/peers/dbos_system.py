"""DBOS as a benchmark system: the workflows of bench/peers/dbos_app.py behind FastAPI, one uvicorn
process, with DBOS's system database (and the counter table) in a database of their own on the same
PostgreSQL server. Its storage is read from DBOS's own tables (dbos.workflow_status, ...)."""

from __future__ import annotations

import json
import os
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote, urlencode

from psycopg.conninfo import conninfo_to_dict

from bench.database import Conn, Database
from bench.loadgen import BenchError
from bench.peers import env
from bench.systems import Processes, Progress, SleepTiming, free_port

APP = "bench.peers.dbos_app:app"

# Statuses of a workflow that has not finished yet; every other one is final.
_OPEN = ("PENDING", "ENQUEUED", "DELAYED")


def peer_database(main: Database) -> Database:
    """DBOS's database beside the benchmark's: `<name>_dbos`, dropped and recreated every run too."""
    params = {k: v for k, v in conninfo_to_dict(main.url).items() if v is not None}
    dbname = f"{params.pop('dbname', '')}_dbos"
    user = quote(str(params.pop("user", "")), safe="")
    password = params.pop("password", None)
    auth = f"{user}:{quote(str(password), safe='')}@" if password else (f"{user}@" if user else "")
    host = str(params.pop("host", "") or "")
    if host.startswith("/"):  # a socket directory goes in the query string
        params["host"], host = host, ""
    port = params.pop("port", None)
    netloc = auth + (f"[{host}]" if ":" in host else host) + (f":{port}" if port else "")
    # A URL, not a libpq string: DBOS hands it to SQLAlchemy.
    query = f"?{urlencode(params)}" if params else ""
    return Database(f"postgresql://{netloc}/{quote(dbname, safe='')}{query}")


def _epoch_ms(moment: datetime) -> int:
    """DBOS stamps rows with int(time.time() * 1000): compare at that resolution."""
    return int(moment.timestamp() * 1000)


def _from_ms(value: int | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value / 1000, UTC)


@dataclass
class Dbos(Processes):
    """One `uvicorn bench.peers.dbos_app:app` process (FastAPI + DBOS, default settings)."""

    db: Database
    name: str = "dbos"
    base_url: str = ""
    _versions: dict[str, str] = field(default_factory=dict)

    def start(self, logs: Path) -> None:
        found = env.versions(env.PEERS["dbos"])
        if found is None:
            raise BenchError(f"the DBOS peer is not installed: run `{env.INSTALL_HINT} dbos`")
        self._versions = found
        port = free_port()
        self.base_url = f"http://127.0.0.1:{port}"
        argv = [str(env.PYTHON), "-m", "uvicorn", APP, "--host", "127.0.0.1", "--port", str(port),
                "--log-level", "warning"]
        app_env = {**os.environ, "BENCH_DBOS_DATABASE_URL": self.db.url}
        self._launch(argv, logs / "dbos-uvicorn.log",
                     f"python -m uvicorn {APP} --port {port} (dbos {found['dbos']}, fastapi {found['fastapi']}, "
                     f"uvicorn {found['uvicorn']}; system database {self.db.name})", env=app_env)
        self._wait_ready(self._answers, "the DBOS app")

    def _answers(self) -> bool:
        try:  # uvicorn answers only once the lifespan (DBOS.launch) is done
            with urllib.request.urlopen(f"{self.base_url}/health", timeout=2) as response:
                return response.status == 200
        except OSError:
            return False

    def version(self) -> str:
        return ", ".join(f"{name} {v}" for name, v in self._versions.items())

    def progress(self, conn: Conn, handler: str, since: datetime) -> Progress:
        row = conn.execute(
            """SELECT count(*),
                      count(*) FILTER (WHERE status <> ALL(%(open)s)),
                      count(*) FILTER (WHERE status <> ALL(%(open)s) AND status <> 'SUCCESS'),
                      min(created_at), max(coalesce(completed_at, updated_at)) FILTER (WHERE status <> ALL(%(open)s))
                 FROM dbos.workflow_status
                WHERE name = %(name)s AND created_at >= %(since)s""",
            {"open": list(_OPEN), "name": handler, "since": _epoch_ms(since)},
        ).fetchone()
        assert row is not None
        return Progress(int(row[0]), int(row[1]), int(row[2]), _from_ms(row[3]), _from_ms(row[4]))

    def sleep_timings(self, conn: Conn, since: datetime) -> list[SleepTiming]:
        """DBOS.sleep checkpoints its wake-up time (seconds since the epoch) before sleeping in
        process, and nothing when it wakes: lateness is the workflow's completion (the next write
        after the sleep) minus that wake-up time, to the ms."""
        rows = conn.execute(
            """SELECT o.output, w.created_at, coalesce(w.completed_at, w.updated_at)
                 FROM dbos.workflow_status w
                 JOIN dbos.operation_outputs o ON o.workflow_uuid = w.workflow_uuid AND o.function_name = 'DBOS.sleep'
                WHERE w.name = 'sleeper' AND w.status = 'SUCCESS' AND w.created_at >= %s""",
            (_epoch_ms(since),),
        ).fetchall()
        return [SleepTiming(float(done) - float(json.loads(wake)) * 1000.0, float(done - created))
                for wake, created, done in rows]

    def counter_values(self, conn: Conn, keys: list[str]) -> dict[str, int]:
        rows = conn.execute("SELECT key, value FROM bench_counter WHERE key = ANY(%s)", (keys,)).fetchall()
        return {key: int(value) for key, value in rows}
