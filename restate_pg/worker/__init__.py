"""Worker processes: claim invocations, run attempts, heartbeat, recover the work of dead workers."""

from restate_pg.services.outcomes import InvocationResult
from restate_pg.worker.engine import Engine, run_worker

__all__ = ["Engine", "InvocationResult", "run_worker"]
