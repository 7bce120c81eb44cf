"""Where the peers live and how they get there: a venv and an npm prefix under
~/.cache/restate-pg-bench (or $RESTATE_PG_BENCH_CACHE), outside the repository, so that the peers'
packages never mix with restate-pg's.

`python -m bench.peers.env install [restate|dbos ...]` installs them; the runner does the same on
first use of a peer named in --systems.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from bench.loadgen import BenchError

CACHE = Path(os.environ.get("RESTATE_PG_BENCH_CACHE", Path.home() / ".cache" / "restate-pg-bench"))
VENV = CACHE / "venv"
NPM_PREFIX = CACHE / "restate"
PYTHON = VENV / "bin" / "python"

RESTATE_SERVER_VERSION = "1.7.12"


@dataclass(frozen=True)
class Peer:
    """A peer's pinned packages: the versions the issue measured, so runs stay comparable."""

    name: str
    pip: tuple[str, ...]  # requirement strings for the peer venv
    distributions: tuple[str, ...]  # the names to report versions of
    npm: tuple[str, ...] = ()


PEERS: dict[str, Peer] = {
    "restate": Peer(
        "restate",
        pip=("restate-sdk==1.2.0", "hypercorn==0.18.0", "uvloop>=0.21"),
        distributions=("restate-sdk", "hypercorn"),
        npm=(f"@restatedev/restate-server@{RESTATE_SERVER_VERSION}",),
    ),
    "dbos": Peer(
        "dbos",
        pip=("dbos==3.4.0", "fastapi>=0.115", "uvicorn[standard]>=0.30"),
        distributions=("dbos", "fastapi", "uvicorn"),
    ),
}

INSTALL_HINT = "python -m bench.peers.env install"


def restate_server_binary() -> Path | None:
    """The restate-server executable the npm package ships for this platform. The benchmark runs
    it directly rather than through the package's node wrapper, which would add a node process."""
    found = sorted(NPM_PREFIX.glob("node_modules/@restatedev/restate-server-*/bin/restate-server"))
    return found[0] if found else None


def versions(peer: Peer) -> dict[str, str] | None:
    """The installed versions of the peer's packages, or None when any is missing."""
    if not PYTHON.exists():
        return None
    script = (
        "import importlib.metadata as m, json, sys\n"
        "out = {}\n"
        "for name in sys.argv[1:]:\n"
        "    try:\n"
        "        out[name] = m.version(name)\n"
        "    except m.PackageNotFoundError:\n"
        "        pass\n"
        "print(json.dumps(out))\n"
    )
    out = subprocess.run([str(PYTHON), "-c", script, *peer.distributions], capture_output=True, text=True)
    if out.returncode != 0:
        return None
    found: dict[str, str] = json.loads(out.stdout)
    if len(found) != len(peer.distributions):
        return None
    if peer.npm:
        binary = restate_server_binary()
        if binary is None:
            return None
        found["restate-server"] = server_version(binary)
    return found


def server_version(binary: Path) -> str:
    out = subprocess.run([str(binary), "--version"], capture_output=True, text=True)
    return out.stdout.strip().rsplit(" ", 1)[-1] if out.returncode == 0 else "unknown"


def install(peer: Peer) -> dict[str, str]:
    """Install the peer into the cache: the venv (created with this interpreter) and, for Restate,
    the npm package. Returns the installed versions."""
    CACHE.mkdir(parents=True, exist_ok=True)
    if not PYTHON.exists():
        _step(f"creating the peer venv {VENV}", [sys.executable, "-m", "venv", str(VENV)])
    _step(f"pip install {' '.join(peer.pip)} into {VENV}",
          [str(PYTHON), "-m", "pip", "install", "--quiet", *peer.pip])
    if peer.npm:
        install_npm(peer.npm)
    found = versions(peer)
    if found is None:
        raise BenchError(f"installing the {peer.name} peer did not leave it usable; try `{INSTALL_HINT} {peer.name}`")
    return found


def install_npm(packages: tuple[str, ...]) -> None:
    """npm packages into the cache's npm prefix (restate-server, for the Restate peer and bench/typescript)."""
    NPM_PREFIX.mkdir(parents=True, exist_ok=True)
    # SCARF_ANALYTICS: the package's install-time analytics hook stays quiet.
    _step(f"npm install {' '.join(packages)} into {NPM_PREFIX}",
          ["npm", "install", "--prefix", str(NPM_PREFIX), "--no-audit", "--no-fund", "--silent", *packages],
          env={**os.environ, "SCARF_ANALYTICS": "false"})


def _step(what: str, argv: list[str], env: dict[str, str] | None = None) -> None:
    print(f"peers: {what}", file=sys.stderr, flush=True)
    try:
        out = subprocess.run(argv, capture_output=True, text=True, env=env)
    except OSError as exc:  # npm missing, typically
        raise BenchError(f"cannot run {argv[0]}: {exc}") from exc
    if out.returncode != 0:
        raise BenchError(f"{what} failed ({out.returncode}):\n{(out.stderr or out.stdout).strip()[-1500:]}")


def main(argv: list[str]) -> int:
    if not argv or argv[0] != "install" or any(name not in PEERS for name in argv[1:]):
        print(f"usage: {INSTALL_HINT} [{'|'.join(PEERS)} ...]   (default: all peers)", file=sys.stderr)
        return 2
    try:
        for name in argv[1:] or list(PEERS):
            found = install(PEERS[name])
            print(f"{name}: " + ", ".join(f"{k} {v}" for k, v in found.items()))
    except BenchError as exc:
        print(f"peers: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
