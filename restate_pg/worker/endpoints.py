"""`EndpointDriver`: a worker drives the SDK endpoints registered over Restate's service protocol.

Every worker drives every registered endpoint, as restate-server does: one claim loop per
endpoint deployment takes the new invocations of the services it is the latest deployment of,
and those pinned to it; each runs as an `EndpointAttempt` (`restate_pg/endpoints/attempt.py`),
counted in the worker's slots like an in-process attempt. The registry is read again when a
deployment is registered (the `services` hint) and at housekeeping.
"""

from __future__ import annotations

import asyncio
import typing

import httpx

from restate_pg.core.records import ClaimedTask, InvocationRecord, Lease, LoadedInvocation, Submission
from restate_pg.endpoints.attempt import EndpointAttempt
from restate_pg.endpoints.deployment import EndpointDeployment, EndpointHandler
from restate_pg.endpoints.h2c import H2Client
from restate_pg.endpoints.settings import signed_headers
from restate_pg.endpoints.targets import CallTarget
from restate_pg.observability import logs
from restate_pg.worker.claims import ClaimScope, claim_loop

if typing.TYPE_CHECKING:
    from restate_pg.worker.engine import Engine

logger = logs.internal_logger("restate_pg.endpoints")


class EndpointClaimant:
    """The claim loop's view of one endpoint deployment."""

    def __init__(self, driver: "EndpointDriver", deployment: EndpointDeployment, latest_of: typing.Sequence[str]) -> None:
        self.driver = driver
        self.deployment = deployment
        self.latest_of = list(latest_of)
        self.work = asyncio.Event()
        self.loop: typing.Optional[asyncio.Future[None]] = None

    def scope(self) -> ClaimScope:
        return ClaimScope(self.deployment.services, [self.deployment.id], self.latest_of)

    def attempt_for(self, task: ClaimedTask, entry: LoadedInvocation) -> typing.Optional[EndpointAttempt]:
        handler = self.deployment.handler(entry.invocation.service, entry.invocation.handler)
        if handler is None:
            return None
        return EndpointAttempt(self.driver, task.lease, entry.invocation, handler, entry.journal, entry.mailbox,
                               task.wakeups)


class EndpointDriver:
    """The endpoint deployments this worker drives, their claim loops, and the `EndpointHost`
    their attempts run on."""

    def __init__(self, engine: "Engine") -> None:
        self.engine = engine
        self.claimants: typing.Dict[str, EndpointClaimant] = {}
        #: The latest deployment of each endpoint service (for calls to it, and fresh invocations).
        self.latest: typing.Dict[str, EndpointDeployment] = {}
        self._clients: typing.Dict[bool, httpx.AsyncClient] = {}
        self._h2: typing.Optional[H2Client] = None
        self.transport_errors: typing.Tuple[typing.Type[BaseException], ...] = (httpx.TransportError,)
        self.targets = self

    # -- the EndpointHost -----------------------------------------------------------------------

    @property
    def default_inactivity_timeout(self) -> float:
        return self.engine.default_inactivity_timeout

    @property
    def store(self) -> typing.Any:
        return self.engine.store

    @property
    def clock(self) -> typing.Any:
        return self.engine.clock

    def http_client(self, http1: bool) -> httpx.AsyncClient:
        client = self._clients.get(http1)
        if client is None:
            limits = httpx.Limits(max_connections=None, max_keepalive_connections=100)
            client = httpx.AsyncClient(http1=http1, http2=not http1, limits=limits, timeout=httpx.Timeout(600.0))
            self._clients[http1] = client
        return client

    def h2_client(self) -> H2Client:
        if self._h2 is None:
            self._h2 = H2Client()
        return self._h2

    def sign(self, path: str, key: typing.Optional[str] = None) -> typing.Dict[str, str]:
        return signed_headers(path, key)

    def after_flush(self, batch: typing.Any, result: typing.Any, lease: Lease) -> None:
        self.engine.after_flush(batch, result, lease)

    def attempt_waiting(self, waiting: bool) -> bool:
        return self.engine.attempt_waiting(waiting)

    # -- Targets --------------------------------------------------------------------------------

    def lookup(self, service: str, handler: str) -> typing.Optional[CallTarget]:
        local = self.engine.app.handler(service, handler)
        if local is not None:
            return CallTarget(service, handler, local.service.service_type, local.kind)
        deployment = self.latest.get(service)
        remote = None if deployment is None else deployment.handler(service, handler)
        if remote is None:
            return None
        return CallTarget(service, handler, remote.service_ty, remote.handler_ty)

    def handler(self, service: str, handler: str) -> typing.Optional[EndpointHandler]:
        deployment = self.latest.get(service)
        return None if deployment is None else deployment.handler(service, handler)

    # -- lifecycle ------------------------------------------------------------------------------

    def sync(self) -> None:
        """Follow the registered endpoints (`RemoteServices`, read by the gateway): start the
        claim loops of new deployments, stop those of removed ones."""
        remote = self.engine.remote
        latest: typing.Dict[str, EndpointDeployment] = {}
        seen = set()
        for deployment, latest_of in remote.deployments:
            seen.add(deployment.id)
            for service in latest_of:
                latest[service] = deployment
            claimant = self.claimants.get(deployment.id)
            if claimant is None:
                claimant = self.claimants[deployment.id] = EndpointClaimant(self, deployment, latest_of)
                claimant.loop = asyncio.ensure_future(claim_loop(self.engine, claimant))
                self.engine._loops.append(claimant.loop)
            else:
                claimant.deployment, claimant.latest_of = deployment, latest_of
            claimant.work.set()
        self.latest = latest
        for gone in set(self.claimants) - seen:
            claimant = self.claimants.pop(gone)
            if claimant.loop is not None:
                claimant.loop.cancel()

    def wake(self) -> None:
        for claimant in self.claimants.values():
            claimant.work.set()

    def attempt_for_record(self, record: InvocationRecord, lease: Lease,
                           state: typing.Optional[typing.Dict[str, bytes]] = None,
                           create: typing.Optional[Submission] = None) -> typing.Optional[EndpointAttempt]:
        """An attempt for an invocation leased here without a claim: submitted by this process
        (`create`: its row is written by the attempt's first flush), or the next in an object's inbox."""
        handler = self.handler(record.service, record.handler)
        if handler is None:
            return None
        return EndpointAttempt(self, lease, record, handler, state=state, create=create)

    async def close(self) -> None:
        for client in self._clients.values():
            await client.aclose()
        self._clients.clear()
        if self._h2 is not None:
            await self._h2.close()
            self._h2 = None
