"""What runs where: deployments (application versions) and the services they register, with
the settings operators change."""

from __future__ import annotations

import typing

from psycopg.types.json import Jsonb

from restate_pg.store.gateway import StorePart

#: The settings of a registered service that an operator may change (`modify_service`).
SERVICE_SETTINGS = ("public", "idempotency_retention", "workflow_retention", "journal_retention",
                    "inactivity_timeout", "abort_timeout")


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

    async def endpoint_deployments(self) -> typing.List[typing.Dict[str, typing.Any]]:
        """The SDK endpoints workers drive (`endpoint_deployments`), each with the services it
        is the latest deployment of (those whose new invocations it takes)."""
        return await self._db.rows(self._db.q.ENDPOINT_DEPLOYMENTS, {})

    async def list_services(self, name: typing.Optional[str] = None) -> typing.List[typing.Dict[str, typing.Any]]:
        return await self._db.rows(self._db.q.LIST_SERVICES, {"name": name})

    async def modify_service(self, name: str, settings: typing.Mapping[str, typing.Any]) -> bool:
        """Change a service's settings (`modify_service`): public, and retentions and timeouts in
        seconds; a setting left out stays as it is. False if the service is not registered."""
        params = {key: settings.get(key) for key in SERVICE_SETTINGS}
        return await self._db.execute(self._db.q.MODIFY_SERVICE, {"name": name, **params})
