"""What every transport shares: submitting and calling, results and their waiters, awakeables,
the operators' verbs and run-time schedules, each returning domain outcomes (`outcomes.py`).

The ingress, the admin API, the clients and the test harness use the services of a `Gateway`
(`gateway.py`) and never import the worker; a worker in the same process plugs in through the
`LocalWorker` Protocol (`ports.py`), which keeps the in-process fast path of submissions.
"""

from restate_pg.services.gateway import Gateway
from restate_pg.services.outcomes import InvocationResult
from restate_pg.services.ports import LocalWorker

__all__ = ["Gateway", "InvocationResult", "LocalWorker"]
