"""The fault classes: what each does to the system while the load runs.

A class injects its faults at points of the load's progress (after a given share of the sends was
accepted), so that they land in the middle of the work whatever the machine's speed. A fault that
takes time by definition (a process stopped past its lease, PostgreSQL down for 10 s) waits for
that; everything else waits for a real outcome (a process registered again, a worker row reaped).
Blocking steps run in threads, so the load goes on meanwhile.
"""

from __future__ import annotations

import asyncio
import random
import re
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from bench import procs
from bench.faults.cluster import Cluster
from bench.faults.load import Load
from bench.faults.system import WORKER_APP, Proc, System

#: The store operations the store-faults class fails (RESTATE_PG_FAULTS, restate_pg/store/faults.py): every
#: statement of the claim path (start_due_scheduled, claim_tasks, the loads that follow a claim), the
#: attempt's flush (`apply()` requests: flush, and the submissions a flush carries) and its mailbox
#: reads; writes both before they reach the server and after they committed, reads before.
STORE_OPERATIONS = ("start_due_scheduled:before", "start_due_scheduled:after", "claim_tasks:before",
                    "claim_tasks:after", "load_invocations:before", "load_journals:before",
                    "load_mailboxes:before", "flush:before", "flush:after", "submit:before", "submit:after",
                    "read_mailbox:before")
STORE_FAULT_CHANCE = 0.02


@dataclass(frozen=True)
class Sizes:
    """How big a class is: the --short one runs in seconds, the full one is issue 11's load."""

    sends: int
    concurrency: int
    keys: int
    send_deadline_s: float  # how long the client retries one send
    drain_s: float  # how long the system may take to finish after the load and the faults
    down_s: float  # how long PostgreSQL stays down in pg-down
    terminate_every_s: float  # pg-terminate: how often it terminates backends
    short: bool

    @classmethod
    def of(cls, short: bool) -> Sizes:
        if short:
            return cls(sends=160, concurrency=16, keys=64, send_deadline_s=60, drain_s=20, down_s=4,
                       terminate_every_s=0.15, short=True)
        return cls(sends=2000, concurrency=16, keys=64, send_deadline_s=180, drain_s=90, down_s=10,
                   terminate_every_s=0.3, short=False)


@dataclass
class Scene:
    """What a class acts on, and what it counts."""

    system: System
    cluster: Cluster
    dbname: str
    load: Load
    sizes: Sizes
    rng: random.Random
    kills: int = 0  # faults that may legitimately re-run a ctx.run closure (kills, stops, lost connections)
    unreaped: int = 0  # stopped workers that no other worker declared dead within 3 leases
    notes: list[str] = field(default_factory=list)

    async def at(self, share: float) -> bool:
        """Wait until `share` of the sends were accepted; False if the load ended first."""
        await self.load.reached(max(1, int(share * len(self.load.sends))))
        return not self.load.done.is_set()

    def note(self, text: str) -> None:
        self.notes.append(text)


class FaultClass:
    """No fault: the load alone (the `baseline` row)."""

    name = "baseline"
    #: What the class does, for --help and docs/faults.md.
    summary = "the load alone, no fault"

    def setup(self, scene: Scene) -> None:
        """Before the load starts."""

    async def inject(self, scene: Scene) -> None:
        """While the load runs; returns when this class's faults are over."""

    def teardown(self, scene: Scene) -> None:
        """After the checks."""

    def logged_faults(self, worker_logs: str) -> int:
        """Faults the workers logged themselves during the class (counted as kills)."""
        return 0

    async def points(self, scene: Scene, full: list[float], short: list[float]) -> AsyncIterator[None]:
        """Once at each share of the load (`short` ones in --short); stops if the load ended first."""
        for share in short if scene.sizes.short else full:
            if not await scene.at(share):
                return
            yield


class WorkerKill(FaultClass):
    name = "worker-kill"
    summary = "SIGKILL a random worker, start a new one at once (8 times; 3 in --short)"

    async def inject(self, scene: Scene) -> None:
        killed: list[Proc] = []
        try:
            async for _ in self.points(scene, [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8], [0.2, 0.45, 0.7]):
                # a worker not killed yet in this class while there is one: not one still starting
                proc = scene.rng.choice([p for p in scene.system.worker_procs if p not in killed]
                                        or scene.system.worker_procs)
                scene.note(f"SIGKILL {proc.name} pid {proc.pid}")
                await asyncio.to_thread(scene.system.kill, proc)
                scene.kills += 1
                killed.append(proc)
                scene.system.restart(proc, wait=False)  # capacity comes back while the load goes on
        finally:
            for proc in killed:
                await asyncio.to_thread(scene.system.wait_ready, proc)


class WorkerStop(FaultClass):
    name = "worker-stop"
    summary = "SIGSTOP a random worker until another worker reaped it (past its lease), then SIGCONT (2 times; 1 in --short)"

    async def inject(self, scene: Scene) -> None:
        async for _ in self.points(scene, [0.2, 0.55], [0.3]):
            proc = scene.rng.choice(scene.system.worker_procs)
            pid = proc.pid
            proc.signal(signal.SIGSTOP)
            scene.kills += 1
            limit = 3 * scene.system.lease_s  # reaping is due within lease + lease / 3
            reaped = await asyncio.to_thread(procs.wait_until, lambda: scene.system.worker_row_gone(pid), limit, 0.1)
            scene.unreaped += not reaped
            scene.note(f"SIGSTOP {proc.name} pid {pid}, " + ("reaped by another worker" if reaped
                                                              else f"NOT reaped within {limit:.0f} s") + ", SIGCONT")
            proc.signal(signal.SIGCONT)


class PgRestart(FaultClass):
    name = "pg-restart"
    summary = "restart PostgreSQL (pg_ctl stop -m fast, start) (3 times; 2 in --short)"

    async def inject(self, scene: Scene) -> None:
        async for _ in self.points(scene, [0.2, 0.5, 0.8], [0.3, 0.7]):
            await asyncio.to_thread(scene.cluster.restart)
            scene.kills += 1
            scene.note("PostgreSQL restarted")


class PgTerminate(FaultClass):
    name = "pg-terminate"
    summary = "pg_terminate_backend on 3 random backends of worker processes every 0.3 s (0.15 s in --short)"

    async def inject(self, scene: Scene) -> None:
        if not await scene.at(0.1):
            return
        end = max(1, int(0.9 * len(scene.load.sends)))
        terminated: dict[str, int] = {}
        while scene.load.accepted < end and not scene.load.done.is_set():
            names = await asyncio.to_thread(scene.cluster.terminate_backends, scene.dbname, WORKER_APP, 3, scene.rng)
            for name in names:
                terminated[name] = terminated.get(name, 0) + 1
            scene.kills += len(names)
            # the rate of the fault, not a wait for anything: the next blow comes this much later
            await asyncio.sleep(scene.sizes.terminate_every_s)
        scene.note("terminated backends of " + ", ".join(f"{k} x{v}" for k, v in sorted(terminated.items())))


class IngressKill(FaultClass):
    name = "ingress-kill"
    summary = "SIGKILL restate-pg serve, start it again on the same port; clients retry (3 times; 1 in --short)"

    async def inject(self, scene: Scene) -> None:
        async for _ in self.points(scene, [0.2, 0.5, 0.8], [0.4]):
            proc = scene.system.serve
            scene.note(f"SIGKILL {proc.name} pid {proc.pid}")
            await asyncio.to_thread(scene.system.kill, proc)
            scene.kills += 1
            await asyncio.to_thread(scene.system.restart, proc)


class PgDown(FaultClass):
    name = "pg-down"
    summary = "PostgreSQL crashes (pg_ctl stop -m immediate) and stays down 10 s (4 s in --short), then starts"

    async def inject(self, scene: Scene) -> None:
        if not await scene.at(0.35):
            return
        await asyncio.to_thread(scene.cluster.stop, "immediate")
        scene.kills += 1
        await asyncio.sleep(scene.sizes.down_s)  # the fault is the outage itself: this long
        await asyncio.to_thread(scene.cluster.start)
        scene.note(f"PostgreSQL down for {scene.sizes.down_s:g} s")


_INJECTED = re.compile(r"inject", re.IGNORECASE)


class StoreFaults(FaultClass):
    name = "store-faults"
    summary = ("workers run with RESTATE_PG_FAULTS: each statement of the claim and flush paths fails with "
               "probability 0.02 before reaching the server or after committing")

    def setup(self, scene: Scene) -> None:
        seed = scene.rng.randrange(1 << 30)
        spec = ",".join(f"{op}={STORE_FAULT_CHANCE}" for op in STORE_OPERATIONS) + f";seed={seed}"
        scene.system.set_worker_env({"RESTATE_PG_FAULTS": spec})
        scene.note(f"RESTATE_PG_FAULTS={spec}")

    def teardown(self, scene: Scene) -> None:
        scene.system.set_worker_env({})

    def logged_faults(self, worker_logs: str) -> int:
        """Injected faults as the workers logged them (lines that say `inject`): 0 until the
        store's fault hook exists, whatever the variable says."""
        return sum(1 for line in worker_logs.splitlines() if _INJECTED.search(line))


CLASSES: dict[str, FaultClass] = {c.name: c for c in (
    FaultClass(), WorkerKill(), WorkerStop(), PgRestart(), PgTerminate(), IngressKill(), PgDown(), StoreFaults())}
