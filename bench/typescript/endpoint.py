"""The TypeScript endpoint process: its packages (examples/typescript's node_modules, the SDK
pinned there), its build (tsc into bench/typescript/build), and the one node process serving it."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

from bench import procs
from bench.loadgen import BenchError
from bench.systems import REPO, free_port

HERE = REPO / "bench" / "typescript"
EXAMPLE = REPO / "examples" / "typescript"
NODE_MODULES = EXAMPLE / "node_modules"
POLYFILL = EXAMPLE / "polyfill.js"  # Promise.withResolvers, which the SDK needs and Node 20 lacks
BUILD = HERE / "build"
SDK_VERSION = "1.17.2"


def sdk_version() -> str | None:
    try:
        found: str = json.loads((NODE_MODULES / "@restatedev" / "restate-sdk" / "package.json").read_text())["version"]
    except (OSError, ValueError, KeyError):
        return None
    return found


def _run(argv: list[str], cwd: Path, what: str) -> None:
    try:
        done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BenchError(f"{what}: {exc}") from exc
    if done.returncode != 0:
        raise BenchError(f"{what} failed ({done.returncode}):\n{(done.stderr or done.stdout).strip()[-1500:]}")


def build() -> None:
    """`npm ci` in examples/typescript when its SDK is missing or not the pinned one, then `tsc`
    when the build is older than the sources."""
    npm, node = shutil.which("npm"), shutil.which("node")
    if npm is None or node is None:
        raise BenchError("node and npm are needed on PATH for the TypeScript handlers (Node.js 20+)")
    if sdk_version() != SDK_VERSION:
        _run([npm, "ci", "--no-audit", "--no-fund"], EXAMPLE, f"npm ci in {EXAMPLE}")
    sources = [*(HERE / "src").glob("*.ts"), HERE / "tsconfig.json"]
    built = BUILD / "main.js"
    if not built.exists() or built.stat().st_mtime < max(path.stat().st_mtime for path in sources):
        _run([str(NODE_MODULES / ".bin" / "tsc"), "-p", str(HERE)], HERE, "tsc -p bench/typescript")


@dataclass
class Endpoint:
    """One node process serving the benchmark's services over h2c (`restate.endpoint().listen()`)."""

    proc: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.proc.pid

    def describe(self) -> str:
        return (f"node bench/typescript/build/main.js on :{self.port} (@restatedev/restate-sdk {sdk_version()}, "
                f"node {_node_version()}, endpoint().listen(): HTTP/2 cleartext, BIDI_STREAM)")

    def stop(self) -> None:
        procs.stop(self.proc)


def start(log: Path) -> Endpoint:
    """Start the endpoint, once its port accepts connections. The SDK logs at WARN: at its default
    (INFO) it writes two lines per invocation, which would count in its CPU."""
    port = free_port()
    log.parent.mkdir(parents=True, exist_ok=True)
    argv = [shutil.which("node") or "node", "--require", str(POLYFILL), str(BUILD / "main.js"), str(port)]
    proc = procs.start(argv, log, cwd=REPO, env={**os.environ, "RESTATE_LOGGING": "WARN"})
    endpoint = Endpoint(proc, port, log)

    def listening() -> bool:
        if proc.poll() is not None:
            raise BenchError(f"the TypeScript endpoint exited with status {proc.returncode}; see {log}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return True
        except OSError:
            return False

    if not procs.wait_until(listening, timeout_s=30, interval_s=0.1):
        endpoint.stop()
        raise BenchError(f"the TypeScript endpoint did not listen on :{port} within 30 s; see {log}")
    return endpoint


def _node_version() -> str:
    out = subprocess.run([shutil.which("node") or "node", "--version"], capture_output=True, text=True)
    return out.stdout.strip().lstrip("v") or "unknown"
