"""Killing a worker process at a point it holds at, and letting another one finish its work."""

from __future__ import annotations

import asyncio
import contextlib
import typing

from tests.support import ledger
from tests.support.polling import eventually
from tests.support.processes import WorkerProcess


def holding(key: str) -> bool:
    """Whether a worker recorded that it holds (`hold:<key>` in the ledger), waiting for SIGKILL."""
    return ledger.count(f"hold:{key}") > 0


@contextlib.asynccontextmanager
async def killed_and_rescued(
    call: typing.Awaitable[typing.Any], app_ref: str, database_url: str, key: str, env: typing.Dict[str, str]
) -> typing.AsyncIterator[typing.Tuple[WorkerProcess, WorkerProcess, typing.Any]]:
    """Start a worker with `env`, send `call`, SIGKILL the worker once it holds for `key`, and
    start another; yields both and `call`'s response while the rescuer still runs."""
    victim = WorkerProcess(app_ref, database_url, env=env).start()
    pending = asyncio.ensure_future(call)
    try:
        await eventually(lambda: holding(key), what=f"the worker to hold for {key}")
        victim.kill()
        assert not pending.done()
        # the rescuer's lease matches the test ingress's (3 s), which judges it by that: a stall of a
        # loaded machine must not get it reaped and its non-journaled code run twice
        with WorkerProcess(app_ref, database_url, lease_seconds=3.0) as rescuer:
            try:
                response = await asyncio.wait_for(pending, 60)
            except BaseException:
                print("victim log:\n" + victim.log() + "\nrescuer log:\n" + rescuer.log())
                raise
            yield victim, rescuer, response
    finally:
        pending.cancel()
        if victim.process is not None and victim.process.poll() is None:
            victim.kill()
