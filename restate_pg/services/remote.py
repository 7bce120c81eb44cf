"""`RemoteServices`: the services registered by SDK endpoints, as every transport sees them.

Read from the registry (`deployment` and `service` tables) when the process starts, whenever
a deployment is registered (the `services` hint), at each housekeeping, and when the ingress is
asked for a service it does not know: for each service, the definitions of its latest
deployment, which new invocations go to; for each deployment, what workers need to drive it.
Reads run one at a time, so that a read that started earlier never replaces a later one, and
each read tells `followers` (the worker's endpoint driver), whoever asked for it: a deployment the
ingress found is one this process's worker drives at once.
"""

from __future__ import annotations

import asyncio
import time
import typing

from restate_pg.api.definitions import Handler, ServiceDefinition
from restate_pg.endpoints.deployment import EndpointDeployment
from restate_pg.endpoints.services import remote_services
from restate_pg.endpoints.settings import protocol_version_max
from restate_pg.observability import logs
from restate_pg.protocol.errors import IncompatibleProtocol
from restate_pg.store.driver import Store

logger = logs.internal_logger("restate_pg.endpoints")


class RemoteServices:
    def __init__(self, store: Store, max_protocol_version: typing.Optional[int] = None) -> None:
        self.store = store
        self.max_protocol_version = max_protocol_version
        #: Every registered endpoint deployment, with the services it is the latest deployment of.
        self.deployments: typing.List[typing.Tuple[EndpointDeployment, typing.List[str]]] = []
        self.services: typing.Dict[str, ServiceDefinition] = {}
        #: Told after every read of the registry (the worker follows its deployments).
        self.followers: typing.List[typing.Callable[[], None]] = []
        #: When the last read of the registry started (time.monotonic), and one read at a time.
        self.loaded_at = float("-inf")
        self._reading = asyncio.Lock()

    async def refresh_since(self, moment: float) -> None:
        """Read the registry again unless a read that started after `moment` (time.monotonic)
        has finished: a request for a service not known here waits for one fresh read, which
        concurrent requests share, before it is answered 404."""
        async with self._reading:
            if self.loaded_at <= moment:
                await self._read()

    async def load(self) -> None:
        """Read the registry, after any read under way."""
        async with self._reading:
            await self._read()

    async def _read(self) -> None:
        self.loaded_at = time.monotonic()
        deployments: typing.List[typing.Tuple[EndpointDeployment, typing.List[str]]] = []
        services: typing.Dict[str, ServiceDefinition] = {}
        for row in await self.store.driven_endpoints():
            try:
                deployment = EndpointDeployment.from_row(row, self.max_protocol_version or protocol_version_max())
            except IncompatibleProtocol as exc:
                logger.warning("deployment %s at %s is not served: %s", row["id"], row["uri"], exc)
                continue
            latest_of = list(row["latest_of"])
            deployments.append((deployment, latest_of))
            services.update(remote_services(deployment, latest_of))
        self.deployments, self.services = deployments, services
        for follower in self.followers:
            follower()

    def handler(self, service: str, name: str) -> typing.Optional[Handler]:
        definition = self.services.get(service)
        return None if definition is None else definition.handlers.get(name)
