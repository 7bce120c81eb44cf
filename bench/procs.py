"""Child processes in their own process groups, and CPU time and memory read from /proc."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

_TICK = float(os.sysconf("SC_CLK_TCK"))


@dataclass(frozen=True)
class ProcStat:
    """The fields of /proc/PID/stat the benchmark uses; times in seconds."""

    pid: int
    ppid: int
    busy_s: float  # utime + stime of the process itself
    reaped_children_s: float  # cutime + cstime: children it has waited for


def read_stat(pid: int) -> ProcStat | None:
    """The process's CPU times, or None if it is gone (or not ours to see)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    fields = text[text.rindex(")") + 2 :].split()  # fields[0] is field 3 of proc(5)
    utime, stime, cutime, cstime = (int(v) / _TICK for v in fields[11:15])
    return ProcStat(pid=pid, ppid=int(fields[1]), busy_s=utime + stime, reaped_children_s=cutime + cstime)


def all_stats() -> dict[int, ProcStat]:
    stats = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (stat := read_stat(int(entry))) is not None:
            stats[stat.pid] = stat
    return stats


def _tree(roots: Iterable[int], stats: dict[int, ProcStat]) -> list[int]:
    """The given processes and their live descendants (`--processes N` serves from children)."""
    children: dict[int, list[int]] = {}
    for stat in stats.values():
        children.setdefault(stat.ppid, []).append(stat.pid)
    found, todo, seen = [], list(roots), set()
    while todo:
        pid = todo.pop()
        if pid in seen or pid not in stats:
            continue
        seen.add(pid)
        found.append(pid)
        todo.extend(children.get(pid, ()))
    return found


def tree_cpu_s(roots: Iterable[int]) -> float:
    """CPU seconds of the given processes, their live descendants and the children they reaped."""
    stats = all_stats()
    return sum(stats[pid].busy_s + stats[pid].reaped_children_s for pid in _tree(roots, stats))


def tree_pids(roots: Iterable[int]) -> list[int]:
    """The given processes and their live descendants."""
    return _tree(roots, all_stats())


def machine_busy_s() -> float:
    """CPU seconds all CPUs of the machine spent busy since boot (/proc/stat)."""
    user, nice, system, _idle, _iowait, irq, softirq, steal = _cpu_line()
    return user + nice + system + irq + softirq + steal


def machine_steal_s() -> float:
    """CPU seconds the hypervisor took from this virtual machine's CPUs since boot (/proc/stat's
    steal): time the machine wanted to run and did not, which no process is charged with."""
    return _cpu_line()[7]


def _cpu_line() -> list[float]:
    return [int(v) / _TICK for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]


def busiest(seconds: float, exclude: set[int]) -> tuple[float, list[str]]:
    """CPUs the machine used over `seconds`, and the processes (outside `exclude`) using most."""
    before_machine, before = machine_busy_s(), all_stats()
    time.sleep(seconds)
    after_machine, after = machine_busy_s(), all_stats()
    spent = {pid: st.busy_s - before[pid].busy_s for pid, st in after.items() if pid in before and pid not in exclude}
    top = sorted((cpu, pid) for pid, cpu in spent.items() if cpu > 0)[-3:]
    names = [f"{_name(pid)} ({cpu / seconds:.2f} CPU)" for cpu, pid in reversed(top)]
    return (after_machine - before_machine) / seconds, names


def _name(pid: int) -> str:
    """The command line of a process, or its name in brackets for a kernel thread."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        return cmdline[:80] or f"[{Path(f'/proc/{pid}/comm').read_text().strip()}]"
    except OSError:
        return str(pid)


def rss_mb(pid: int, field: str = "VmRSS") -> float | None:
    """A process's resident memory in MB, or with `field="VmHWM"` its high-water mark."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def start(argv: Sequence[str], log_path: Path, cwd: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """Start a long-running process in a new process group, its output going to `log_path`."""
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            list(argv), cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop(proc: subprocess.Popen[bytes], grace_s: float = 15.0) -> None:
    """SIGTERM the process's group, wait up to `grace_s`, then SIGKILL whatever is left of it."""
    _signal_group(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        pass
    _signal_group(proc.pid, signal.SIGKILL)
    proc.wait()


def _signal_group(pgid: int, signum: int) -> None:
    try:
        os.killpg(pgid, signum)
    except (ProcessLookupError, PermissionError):
        pass


def wait_until(predicate: Callable[[], object], timeout_s: float, interval_s: float = 0.1) -> bool:
    """Call `predicate()` until it is true or `timeout_s` passes; returns its last verdict."""
    deadline = time.monotonic() + timeout_s
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval_s)
