"""The real Restate as a benchmark system: restate-server (from npm) and the services of
bench/peers/restate_app.py written with restate-sdk, served by hypercorn and registered through the
admin API. Its storage is read through Restate's SQL introspection (`POST /query` on the admin port)."""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import tempfile
import urllib.parse
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.database import Conn, Database
from bench.loadgen import BenchError
from bench.peers import env
from bench.systems import Processes, Progress, SleepTiming, free_port

APP = "bench.peers.restate_app:app"


def _http(url: str, body: object | None = None, method: str = "", timeout_s: float = 10.0) -> tuple[int, bytes]:
    """Send a request (POST with a JSON body when `body` is given, else GET, or `method` with no
    body and no content type) and return (status, body); no connection is status 0."""
    parts = urllib.parse.urlsplit(url)
    headers = {"accept": "application/json"}
    data = None
    if body is not None:
        data, headers["content-type"] = json.dumps(body).encode(), "application/json"
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=timeout_s)
    try:
        connection.request(method or ("GET" if data is None else "POST"), parts.path, body=data, headers=headers)
        response = connection.getresponse()
        return response.status, response.read()
    except OSError:
        return 0, b""
    finally:
        connection.close()


def since_literal(since: datetime) -> str:
    """A timestamp literal for Restate's SQL, floored to the millisecond: Restate keeps
    milliseconds, so an invocation created in the same millisecond as `since` still counts."""
    utc = since.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _parse_time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def register_endpoint(system: Processes, admin_url: str, base_url: str, uri: str) -> None:
    """Register the SDK endpoint at `uri` through an admin API speaking Restate's (restate-server's,
    or restate-pg's), then wait until the system's ingress routes to the benchmark's services."""
    deployment = {"uri": uri}
    system._wait_ready(lambda: _http(f"{admin_url}/deployments", deployment)[0] in (200, 201),
                       "the SDK deployment's registration")
    # Registration is in the metadata; wait until the ingress routes to the services too.
    system._wait_ready(lambda: _http(f"{base_url}/BenchCounter/ready/get", method="POST")[0] == 200, "the ingress")


@dataclass
class Restate(Processes):
    """restate-server (single node, default configuration, data in a temporary directory) plus
    one hypercorn process serving the SDK services."""

    name: str = "restate"
    base_url: str = ""
    db: Database | None = None  # Restate keeps its own storage (RocksDB), not PostgreSQL
    admin_url: str = ""
    _data_dir: Path | None = None
    _versions: dict[str, str] = field(default_factory=dict)
    #: Configuration set through the environment (RESTATE_...), shown in the report.
    extra_env: dict[str, str] = field(default_factory=dict)

    def start(self, logs: Path) -> None:
        found = env.versions(env.PEERS["restate"])
        if found is None or env.restate_server_binary() is None:
            raise BenchError(f"the Restate peer is not installed: run `{env.INSTALL_HINT} restate`")
        self._versions = found
        self.start_server(logs)
        service = free_port()
        # hypercorn's error log at "error": at "warning" it reports that the SDK's ASGI app has no
        # lifespan support, on every start.
        sdk = [str(env.PYTHON), "-m", "hypercorn", "--bind", f"127.0.0.1:{service}", "--worker-class", "uvloop",
               "--log-level", "error", APP]
        self._launch(sdk, logs / "restate-sdk-hypercorn.log",
                     f"python -m hypercorn --worker-class uvloop {APP} on :{service} "
                     f"(restate-sdk {found['restate-sdk']}, hypercorn {found['hypercorn']})")
        self._wait_ready(lambda: _http(f"http://127.0.0.1:{service}/health")[0] != 0, "hypercorn")
        self.register(f"http://127.0.0.1:{service}")

    def start_server(self, logs: Path) -> None:
        """restate-server alone, on free ports and a fresh data directory, once its admin API answers."""
        binary = env.restate_server_binary()
        if binary is None:
            raise BenchError(f"restate-server is not installed: run `{env.INSTALL_HINT} restate`")
        version = env.server_version(binary)
        self._versions.setdefault("restate-server", version)
        ingress, admin, node = free_port(), free_port(), free_port()
        self.base_url, self.admin_url = f"http://127.0.0.1:{ingress}", f"http://127.0.0.1:{admin}"
        self._data_dir = Path(tempfile.mkdtemp(prefix="restate-pg-bench-restate-"))
        server_env = {
            **os.environ,
            "RESTATE_LISTEN_MODE": "tcp",
            "RESTATE_INGRESS__BIND_ADDRESS": f"127.0.0.1:{ingress}",
            "RESTATE_ADMIN__BIND_ADDRESS": f"127.0.0.1:{admin}",
            "RESTATE_BIND_ADDRESS": f"127.0.0.1:{node}",
            "RESTATE_DISABLE_TELEMETRY": "true",
            **self.extra_env,
        }
        server = [str(binary), "--base-dir", str(self._data_dir), "--no-logo", "--log-format", "compact",
                  "--log-disable-ansi-codes", "true", "--log-filter", "warn"]
        self._launch(server, logs / "restate-server.log",
                     f"restate-server {version} (single node, "
                     f"{', '.join(f'{k}={v}' for k, v in self.extra_env.items()) or 'default configuration'}, "
                     f"ingress :{ingress}, admin :{admin}, data in a temporary directory)", env=server_env)
        self._wait_ready(lambda: _http(f"{self.admin_url}/health")[0] == 200, "restate-server's admin API")

    def register(self, uri: str) -> None:
        register_endpoint(self, self.admin_url, self.base_url, uri)

    def stop(self) -> None:
        super().stop()
        if self._data_dir is not None:
            shutil.rmtree(self._data_dir, ignore_errors=True)
            self._data_dir = None

    def version(self) -> str:
        return ", ".join(f"{name} {v}" for name, v in self._versions.items())

    def query(self, sql: str) -> list[dict[str, Any]]:
        """Rows of a query on Restate's introspection tables."""
        status, body = _http(f"{self.admin_url}/query", {"query": sql}, timeout_s=60)
        if status != 200:
            raise BenchError(f"Restate's query API answered {status}: {body.decode(errors='replace')[:300]}")
        rows: list[dict[str, Any]] = json.loads(body)["rows"]
        return rows

    def progress(self, conn: Conn, handler: str, since: datetime) -> Progress:
        if not re.fullmatch(r"\w+", handler):
            raise ValueError(f"not a handler name: {handler!r}")
        (row,) = self.query(
            "SELECT count(*) AS created,"
            " count(*) FILTER (WHERE status = 'completed') AS completed,"
            " count(*) FILTER (WHERE status = 'completed' AND completion_result = 'failure') AS failed,"
            " min(created_at) AS first_created, max(completed_at) AS last_completed"
            " FROM sys_invocation WHERE target_service_name = 'Bench'"
            f" AND target_handler_name = '{handler}' AND created_at >= '{since_literal(since)}'"
        )
        return Progress(int(row["created"]), int(row["completed"]), int(row["failed"]),
                        _parse_time(row.get("first_created")), _parse_time(row.get("last_completed")))

    def sleep_timings(self, conn: Conn, since: datetime) -> list[SleepTiming]:
        """The Sleep command journals its wake-up time (ms since the epoch) and the Sleep
        notification its `appended_at`: the same two moments restate-pg's figure uses, to the ms."""
        rows = self.query(
            "SELECT j.id, j.entry_type, j.entry_lite_json, j.appended_at, i.created_at, i.completed_at"
            " FROM sys_journal j JOIN sys_invocation i ON i.id = j.id"
            " WHERE i.target_service_name = 'Bench' AND i.target_handler_name = 'sleeper'"
            f" AND i.status = 'completed' AND i.created_at >= '{since_literal(since)}'"
            " AND j.entry_type IN ('Command: Sleep', 'Notification: Sleep')"
        )
        wake: dict[tuple[str, int], float] = {}
        woke: dict[tuple[str, int], float] = {}
        total: dict[str, float] = {}
        for row in rows:
            entry = json.loads(row["entry_lite_json"])
            if "Command" in entry:
                sleep = entry["Command"]["Sleep"]
                wake[(row["id"], int(sleep["completion_id"]))] = float(sleep["wake_up_time"])
            else:
                completion = int(entry["Notification"]["id"]["CompletionId"])
                woke[(row["id"], completion)] = _ms(row["appended_at"])
            total[row["id"]] = _ms(row["completed_at"]) - _ms(row["created_at"])
        return [SleepTiming(woke[key] - at, total[key[0]]) for key, at in wake.items() if key in woke]

    def counter_values(self, conn: Conn, keys: list[str]) -> dict[str, int]:
        if not keys:
            return {}
        rows = self.query(
            "SELECT service_key, value_utf8 FROM state WHERE service_name = 'BenchCounter' AND key = 'value'"
            f" AND service_key IN ({', '.join(_quote(k) for k in keys)})"
        )
        return {row["service_key"]: int(json.loads(row["value_utf8"])) for row in rows}


def _ms(value: str) -> float:
    return datetime.fromisoformat(value).timestamp() * 1000.0
