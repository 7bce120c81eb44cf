"""The two servers the TypeScript endpoint is registered with: restate-pg without an application
(`restate-pg dev`), and restate-server 1.7.12. Each registers the endpoint
through its admin API when it starts; everything else (the workloads' probes of storage) is the
Python benchmark's (bench/systems.py, bench/peers/restate_system.py)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bench.loadgen import BenchError
from bench.peers import env
from bench.peers.restate_system import Restate, register_endpoint
from bench.systems import RestatePg


@dataclass
class RestatePgServer(RestatePg):
    """restate-pg serving registered SDK endpoints only (no in-process application)."""

    app: str | None = None
    endpoint_uri: str = ""

    def start(self, logs: Path) -> None:
        super().start(logs)
        register_endpoint(self, self.admin_url, self.base_url, self.endpoint_uri)


@dataclass
class RestateServer(Restate):
    """restate-server alone (no hypercorn): the TypeScript endpoint is its only deployment."""

    endpoint_uri: str = ""

    def start(self, logs: Path) -> None:
        if env.restate_server_binary() is None:
            env.install_npm((f"@restatedev/restate-server@{env.RESTATE_SERVER_VERSION}",))
        if env.restate_server_binary() is None:
            raise BenchError("installing restate-server from npm did not leave its binary in place")
        self.start_server(logs)
        self.register(self.endpoint_uri)
