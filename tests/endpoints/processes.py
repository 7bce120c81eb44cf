"""Real SDK endpoint processes for the service-protocol tests: installed, started, waited for, stopped.

`start_typescript_endpoint(mode, port)` runs tests/endpoints/typescript (the TypeScript SDK, built
with the example's node_modules) and `start_python_endpoint(mode, port)` runs
tests/endpoints/python on hypercorn; both return an `Endpoint` once its `/discover` answers, or
raise with the process's log. Modes name how Restate reaches the endpoint:

| mode      | HTTP                    | protocol mode    | TypeScript                          | Python (hypercorn)          |
|-----------|-------------------------|------------------|-------------------------------------|-----------------------------|
| `h2`      | HTTP/2 cleartext (h2c)  | BIDI_STREAM      | `endpoint().listen(port)`           | as discovered over h2c      |
| `h2-rr`   | HTTP/2 cleartext (h2c)  | REQUEST_RESPONSE | `http2Handler({bidirectional:false})` | `protocol="request_response"` |
| `h1`      | HTTP/1.1                | REQUEST_RESPONSE | `http1Handler()`                    | as discovered over HTTP/1.1 |
| `h1-bidi` | HTTP/1.1                | BIDI_STREAM      | `http1Handler({bidirectional:true})` | (not offered)               |

`ensure_node_modules()` installs the example's packages (`npm ci`, once for all pytest-xdist
workers, under a file lock, skipped when node_modules matches package-lock.json) and builds the
TypeScript services (`tsc`, skipped when the build is newer than its sources).
"""

from __future__ import annotations

import dataclasses
import fcntl
import hashlib
import json
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import typing
from pathlib import Path

import httpx

from tests.support.processes import REPO, ChildProcess

EXAMPLE = REPO / "examples" / "typescript"
NODE_MODULES = EXAMPLE / "node_modules"
POLYFILL = EXAMPLE / "polyfill.js"
TS_ENDPOINT = REPO / "tests" / "endpoints" / "typescript"
TS_BUILD = TS_ENDPOINT / "build"

#: The manifest versions restate-server 1.7 offers, in the one header it sends.
DISCOVER_ACCEPT = ", ".join(f"application/vnd.restate.endpointmanifest.v{v}+json" for v in (2, 3, 4))
#: Liveness bound for an endpoint to answer /discover (node starts in ~0.2 s, hypercorn in ~1 s).
READY_TIMEOUT_S = 30.0
#: Installing the example's packages from the registry (about 5 s when it is reachable).
NPM_CI_TIMEOUT_S = 300.0

#: The protocol mode each mode's manifest announces.
PROTOCOL_MODES = {"h2": "BIDI_STREAM", "h2-rr": "REQUEST_RESPONSE", "h1": "REQUEST_RESPONSE", "h1-bidi": "BIDI_STREAM"}
TYPESCRIPT_MODES = ("h2", "h2-rr", "h1", "h1-bidi")
PYTHON_MODES = ("h2", "h2-rr", "h1")


def free_port() -> int:
    """A TCP port nobody listens on now (the OS's pick for port 0)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclasses.dataclass
class Endpoint:
    """A running SDK endpoint: where it answers, how, and its process (with its log)."""

    sdk: str  # "typescript" or "python"
    mode: str  # a key of PROTOCOL_MODES
    port: int
    process: ChildProcess
    prefix: str = ""
    counters: Path = dataclasses.field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="restate-test-counters-")))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def http2(self) -> bool:
        """Whether Restate reaches it over h2c (else register it with use_http_11)."""
        return self.mode.startswith("h2")

    @property
    def protocol_mode(self) -> str:
        return PROTOCOL_MODES[self.mode]

    def name(self, service: str) -> str:
        """A test service's registered name (`Echo` -> `<prefix>Echo`)."""
        return self.prefix + service

    def count(self, counter: str) -> int:
        """How often the services bumped `counter` (0 if never): executions, across restarts."""
        path = self.counters / counter
        return path.stat().st_size if path.exists() else 0

    def log(self) -> str:
        return self.process.log()

    def kill(self) -> None:
        """SIGKILL, as in a crash: nothing of the process runs after it."""
        self.process.kill()

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it has not exited within 15 s."""
        self.process.stop()

    def restart(self) -> "Endpoint":
        """This endpoint (port, prefix, counters) in a fresh process, once it answers again; the
        old process is killed first if it still runs. In place, so that whoever tracks the
        endpoint (the fixture that stops it) stops the new process."""
        if self.process.process is not None and self.process.process.poll() is None:
            self.kill()
        self.process = start_endpoint(self.sdk, self.mode, self.port, prefix=self.prefix, counters=self.counters,
                                      env=self.process.extra_env).process
        return self

    def __str__(self) -> str:
        return f"{self.sdk} endpoint ({self.mode}, {self.protocol_mode}) at {self.url}, pid {self.process.pid}"


class EndpointProcess(ChildProcess):
    """A ChildProcess that remembers the environment it was given, for restarts."""

    def __init__(self, args: typing.Sequence[str], *, env: typing.Dict[str, str], cwd: Path = REPO) -> None:
        super().__init__(args, env=env, cwd=cwd)
        self.extra_env = dict(env)


def start_endpoint(
    sdk: str,
    mode: str = "h2",
    port: typing.Optional[int] = None,
    *,
    prefix: str = "",
    counters: typing.Optional[Path] = None,
    env: typing.Optional[typing.Mapping[str, str]] = None,
) -> Endpoint:
    """`sdk`'s test services ("typescript" or "python") served in `mode` (see the module's table)
    on `port` (a free one if None), once they answer /discover. `prefix` goes before every
    service's name, `counters` is the directory of the services' counters (a fresh one if None),
    `env` adds variables (RESTATE_IDENTITY_KEYS: the endpoint checks request signatures)."""
    modes = {"typescript": TYPESCRIPT_MODES, "python": PYTHON_MODES}.get(sdk)
    if modes is None or mode not in modes:
        raise ValueError(f"no {sdk} endpoint mode {mode!r} (typescript: {TYPESCRIPT_MODES}, python: {PYTHON_MODES})")
    port = port or free_port()
    counters = counters or Path(tempfile.mkdtemp(prefix="restate-test-counters-"))
    variables = {"RESTATE_TEST_PREFIX": prefix, "RESTATE_TEST_COUNTERS": str(counters), **(env or {})}
    if sdk == "typescript":
        ensure_node_modules()
        node = shutil.which("node") or "node"
        command = [node, "--require", str(POLYFILL), str(TS_BUILD / "main.js"), mode, str(port)]
    else:  # hypercorn in this one process (python/serve.py): h2c and HTTP/1.1 on one port
        command = [sys.executable, "-m", "tests.endpoints.python.serve", str(port)]
        if mode == "h2-rr":
            variables.setdefault("RESTATE_TEST_PROTOCOL", "request_response")
    return _started(Endpoint(sdk, mode, port, EndpointProcess(command, env=variables), prefix, counters))


def start_typescript_endpoint(mode: str = "h2", port: typing.Optional[int] = None, **options: typing.Any) -> Endpoint:
    """tests/endpoints/typescript on the TypeScript SDK (options: see `start_endpoint`)."""
    return start_endpoint("typescript", mode, port, **options)


def start_python_endpoint(mode: str = "h2", port: typing.Optional[int] = None, **options: typing.Any) -> Endpoint:
    """tests/endpoints/python on restate-sdk, served by hypercorn (options: see `start_endpoint`)."""
    return start_endpoint("python", mode, port, **options)


#: The seed's example listens on this port, as written (`listen(9080)`).
SEED_PORT = 9080


class SeedExample(Endpoint):
    """examples/typescript's app on port 9080, holding a machine-wide lock on that port while it
    runs (other test processes wanting the seed's port wait for it), released by stop()."""

    lock: typing.Optional[typing.IO[str]] = None

    def stop(self) -> None:
        super().stop()
        if self.lock is not None:
            self.lock.close()  # releases the flock
            self.lock = None

    def restart(self) -> "Endpoint":
        if self.process.process is not None and self.process.process.poll() is None:
            self.kill()
        self.process = EndpointProcess(self.process.args, env=self.process.extra_env, cwd=EXAMPLE)
        return _started(self)  # the port stays ours: the lock is kept


def start_seed_example() -> SeedExample:
    """The seed's services (examples/typescript/src/app.ts) run as its README says (`npx ts-node
    src/app.ts`, minus npx's wrapper process, so that kill() reaches the server itself), waiting
    for the seed's port to be free of other test processes' example first."""
    ensure_node_modules()
    lock = open(Path(tempfile.gettempdir()) / f"restate-pg-port-{SEED_PORT}.lock", "w")
    fcntl.flock(lock, fcntl.LOCK_EX)
    node = shutil.which("node") or "node"
    process = EndpointProcess([node, str(NODE_MODULES / ".bin" / "ts-node"), "src/app.ts"], env={}, cwd=EXAMPLE)
    example = SeedExample("typescript", "h2", SEED_PORT, process)
    example.lock = lock
    try:
        return typing.cast(SeedExample, _started(example))
    except BaseException:
        lock.close()
        raise


def discover(endpoint: Endpoint, accept: str = DISCOVER_ACCEPT, *, timeout_s: float = 5.0) -> httpx.Response:
    """`GET /discover` as Restate sends it: over h2c or HTTP/1.1 as the endpoint's mode says."""
    with httpx.Client(http1=not endpoint.http2, http2=endpoint.http2, timeout=timeout_s) as client:
        return client.get(f"{endpoint.url}/discover", headers={"accept": accept})


def _started(endpoint: Endpoint) -> Endpoint:
    """Start the process and wait until /discover answers (any status: an identity-checking
    endpoint answers 401), within READY_TIMEOUT_S; on a crash or timeout, raise with its log."""
    endpoint.process.start()
    deadline = time.monotonic() + READY_TIMEOUT_S
    last: object = None
    while time.monotonic() < deadline:
        exit_code = endpoint.process.process.poll() if endpoint.process.process else None
        if exit_code is not None:
            raise RuntimeError(f"{endpoint} exited with {exit_code} before answering /discover; its log:\n{endpoint.log()}")
        try:
            discover(endpoint, timeout_s=1.0)
            return endpoint
        except httpx.TransportError as error:  # not listening yet
            last = error
        time.sleep(0.02)
    endpoint.kill()
    raise RuntimeError(f"{endpoint} did not answer /discover within {READY_TIMEOUT_S}s ({last!r}); its log:\n{endpoint.log()}")


def _lock_digest() -> str:
    digest = hashlib.sha256()
    for name in ("package.json", "package-lock.json"):
        digest.update((EXAMPLE / name).read_bytes())
    return digest.hexdigest()


def _run(args: typing.Sequence[str], cwd: Path, timeout_s: float) -> None:
    done = subprocess.run(list(args), cwd=cwd, capture_output=True, text=True, timeout=timeout_s)
    if done.returncode != 0:
        raise RuntimeError(f"`{' '.join(args)}` in {cwd} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")


def _newest_source() -> float:
    sources = [*(TS_ENDPOINT / "src").glob("*.ts"), TS_ENDPOINT / "tsconfig.json", EXAMPLE / "package-lock.json"]
    return max(path.stat().st_mtime for path in sources)


def ensure_node_modules() -> Path:
    """Install the example's packages and build the TypeScript test services, each only when out
    of date, under a file lock that serialises the pytest-xdist workers (the first installs, the
    others find it done). Returns the node_modules directory."""
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("npm is not on PATH: the SDK endpoint tests need Node.js 20+ and npm")
    stamp = NODE_MODULES / ".restate-pg-lock-sha256"
    built = TS_BUILD / ".built"
    lock_path = Path(tempfile.gettempdir()) / f"restate-pg-npm-{hashlib.sha256(str(EXAMPLE).encode()).hexdigest()[:12]}.lock"
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        digest = _lock_digest()
        if not stamp.exists() or stamp.read_text() != digest:
            _run([npm, "ci", "--no-audit", "--no-fund"], EXAMPLE, NPM_CI_TIMEOUT_S)
            stamp.write_text(digest)
        if not built.exists() or built.stat().st_mtime < _newest_source():
            _run([str(NODE_MODULES / ".bin" / "tsc"), "-p", str(TS_ENDPOINT)], TS_ENDPOINT, 120.0)
            built.write_text(json.dumps({"built": time.time()}))
    return NODE_MODULES


def stop_all(endpoints: typing.Iterable[Endpoint]) -> None:
    """Stop every endpoint still running (SIGCONT first, in case a test stopped one)."""
    for endpoint in endpoints:
        if endpoint.process.process is not None and endpoint.process.process.poll() is None:
            endpoint.process.signal(signal.SIGCONT)
        endpoint.stop()
