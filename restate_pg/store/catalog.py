"""What runs where: deployments (application versions) and the services they register, with
the settings operators change."""

from __future__ import annotations

import typing
from dataclasses import dataclass

from psycopg.types.json import Jsonb

from restate_pg.core.hints import Hint
from restate_pg.store.gateway import StorePart
from restate_pg.store.rows import Row, named_rows

#: The settings of a registered service that an operator may change (`modify_service`).
SERVICE_SETTINGS = ("public", "idempotency_retention", "workflow_retention", "journal_retention",
                    "inactivity_timeout", "abort_timeout")


T = typing.TypeVar("T")


@dataclass(frozen=True)
class EndpointRecord:
    """An SDK endpoint deployment as stored: where and how it is reached, and the documents of
    the services it registers (Restate's `ServiceMetadata`, each with its `revision`, `public`
    and `handlers`), which become the `service` rows of those it is the latest of."""

    id: str
    uri: str
    protocol_mode: str
    min_protocol_version: int
    max_protocol_version: int
    use_http_11: bool
    additional_headers: typing.Mapping[str, str]
    sdk_version: typing.Optional[str]
    manifest: typing.Any
    services: typing.Sequence[typing.Mapping[str, typing.Any]]
    #: The services it becomes the latest of (None: all of them); an update of an older
    #: deployment leaves the newer deployments' services alone.
    latest_of: typing.Optional[typing.Collection[str]] = None


@dataclass(frozen=True)
class Registry:
    """What a registration decides on, read under the registry lock: the endpoint deployments
    (rows of `endpoint_deployments`) and every service's type, deployment and revision."""

    endpoints: typing.List[Row]
    services: typing.Dict[str, Row]


@dataclass(frozen=True)
class RegistryChange:
    """What to write: an endpoint to save (with its services: all of them, or with
    `connection_only` just where and how it is reached), or a deployment to remove."""

    save: typing.Optional[EndpointRecord] = None
    connection_only: bool = False
    remove: typing.Optional[str] = None


class Catalog(StorePart):
    """Deployments and services."""

    async def register_deployment(self, deployment: str, services: typing.Sequence[typing.Dict[str, typing.Any]]) -> None:
        """Record a deployment and make it the latest of its services, unless a newer one is
        (`register_deployment`, `register_services`, one transaction)."""
        q, params = self._db.q, {"deployment": deployment, "services": Jsonb(list(services))}
        await self._db.transaction([(q.REGISTER_DEPLOYMENT, params), (q.REGISTER_SERVICES, params)])

    async def compatible_deployments(self, deployment: str) -> typing.List[str]:
        row = await self._db.first(self._db.q.COMPATIBLE_DEPLOYMENTS, {"deployment": deployment})
        return [] if row is None else list(row["compatible_with"])

    async def mark_compatible(self, deployment: str, compatible: typing.Sequence[str]) -> bool:
        return await self._db.execute(self._db.q.MARK_COMPATIBLE, {"deployment": deployment, "compatible": list(compatible)})

    async def take_over_deployments(self, deployment: str) -> typing.List[typing.Tuple[str, int]]:
        """Development only: mark every other deployment with invocations pinned to it compatible
        with `deployment` (`take_over_deployments`), so that a restarted `restate-pg dev` resumes
        them on the edited code; (deployment, invocations) of each one taken over."""
        rows = await self._db.rows(self._db.q.TAKE_OVER_DEPLOYMENTS, {"deployment": deployment})
        return [(row["deployment"], row["invocations"]) for row in rows]

    async def stranded_invocations(self) -> typing.List[typing.Tuple[str, int]]:
        """(deployment, invocations) for each deployment no registered worker runs or resumes
        while unleased invocations are pinned to it (`stranded_invocations`): they wait for ever
        unless such a worker starts or an operator marks the deployment compatible."""
        rows = await self._db.rows(self._db.q.STRANDED_INVOCATIONS, {})
        return [(row["deployment"], row["invocations"]) for row in rows]

    async def list_deployments(self, deployment: typing.Optional[str] = None) -> typing.List[typing.Dict[str, typing.Any]]:
        return await self._db.rows(self._db.q.LIST_DEPLOYMENTS, {"id": deployment})

    async def driven_endpoints(self) -> typing.List[typing.Dict[str, typing.Any]]:
        """The SDK endpoints workers drive (`driven_endpoints`), each with its manifest and the
        services it is the latest deployment of (those whose new invocations it takes)."""
        return await self._db.rows(self._db.q.DRIVEN_ENDPOINTS, {})

    async def list_services(self, name: typing.Optional[str] = None) -> typing.List[typing.Dict[str, typing.Any]]:
        return await self._db.rows(self._db.q.LIST_SERVICES, {"name": name})

    async def modify_service(self, name: str, settings: typing.Mapping[str, typing.Any]) -> bool:
        """Change a service's settings (`modify_service`): public, and retentions and timeouts in
        seconds; a setting left out stays as it is. False if the service is not registered."""
        params = {key: settings.get(key) for key in SERVICE_SETTINGS}
        return await self._db.execute(self._db.q.MODIFY_SERVICE, {"name": name, **params})

    async def endpoint_deployments(self) -> typing.List[Row]:
        """The SDK endpoint deployments (`endpoint_deployments`), oldest first."""
        return await self._db.rows(self._db.q.ENDPOINT_DEPLOYMENTS, {})

    async def change_registry(
        self, decide: typing.Callable[[Registry], typing.Tuple[T, typing.Optional[RegistryChange]]],
        channel: str, hint: Hint,
    ) -> T:
        """Read the registry under its lock, let `decide` say what to answer and what to write,
        and write it, with `hint` on `channel` once it commits; one transaction."""
        q = self._db.q
        async with self._db.connection() as conn, conn.transaction():
            await conn.execute(q.LOCK_REGISTRY)
            cur = conn.cursor(row_factory=named_rows())
            await cur.execute(q.ENDPOINT_DEPLOYMENTS, {})
            endpoints = await cur.fetchall()
            await cur.execute(q.SERVICE_REVISIONS, {})
            services = {row["name"]: row for row in await cur.fetchall()}
            answer, change = decide(Registry(endpoints, services))
            if change is None:
                return answer
            if change.save is not None:
                await self._save_endpoint(cur, change.save, change.connection_only)
            if change.remove is not None:
                await cur.execute(q.DROP_DEPLOYMENT_SERVICES, {"id": change.remove, "names": []})
                await cur.execute(q.REMOVE_DEPLOYMENT, {"id": change.remove})
            await cur.execute(q.NOTIFY, {"channel": channel, "payload": hint.encode()})
        return answer

    async def _save_endpoint(self, cur: typing.Any, record: EndpointRecord, connection_only: bool) -> None:
        q = self._db.q
        params = {
            "id": record.id, "uri": record.uri, "protocol_mode": record.protocol_mode,
            "min_protocol_version": record.min_protocol_version, "max_protocol_version": record.max_protocol_version,
            "use_http_11": record.use_http_11, "additional_headers": Jsonb(dict(record.additional_headers)),
            "sdk_version": record.sdk_version, "manifest": Jsonb(record.manifest),
            "services": Jsonb([dict(doc) for doc in record.services]),
        }
        if connection_only:
            await cur.execute(q.UPDATE_ENDPOINT_CONNECTION, params)
            return
        await cur.execute(q.SAVE_ENDPOINT_DEPLOYMENT, params)
        await cur.execute(q.DROP_DEPLOYMENT_SERVICES, {"id": record.id, "names": [doc["name"] for doc in record.services]})
        latest = [dict(doc) for doc in record.services if record.latest_of is None or doc["name"] in record.latest_of]
        await cur.execute(q.SAVE_ENDPOINT_SERVICES, {"id": record.id, "services": Jsonb(latest)})
