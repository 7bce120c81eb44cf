"""`restate_pg.app([...])`: the set of services a process hosts.

The same object is handed to the CLI (`restate-pg worker module:app`), to the ingress router and
to the worker, so that all of them agree on which handlers exist.
"""

from __future__ import annotations

import typing

from restate_pg.api.definitions import Handler, ServiceDefinition
from restate_pg.api.entry_codec import CodecConfig, CodecSource

if typing.TYPE_CHECKING:
    from restate_pg.api.cron import Cron


class App:
    """The services of one application, by name."""

    def __init__(
        self,
        services: typing.Iterable[ServiceDefinition] = (),
        deployment: typing.Optional[str] = None,
        crons: typing.Iterable["Cron"] = (),
        journal_value_codec: CodecConfig = None,
    ) -> None:
        self.services: typing.Dict[str, ServiceDefinition] = {}
        #: The codec of every value the app's handlers journal (`api/entry_codec.py`).
        self.codec = CodecSource(journal_value_codec)
        #: Schedules declared in code, by name: workers sync them to the `cron_job` table.
        self.crons: typing.Dict[str, "Cron"] = {}
        self._deployment = deployment
        for service in services:
            self.bind(service)
        for cron in crons:
            self.add_cron(cron)

    @property
    def deployment_id(self) -> str:
        """The application version its workers run: the `deployment` given to `app()`, else one
        derived from the services, handlers and handler source (see `api.metadata`)."""
        if self._deployment is not None:
            return self._deployment
        from restate_pg.api.metadata import derive_deployment_id

        return derive_deployment_id(self.services.values())

    def bind(self, *services: ServiceDefinition) -> "App":
        for service in services:
            if not isinstance(service, ServiceDefinition):
                raise TypeError(f"expected a Service, VirtualObject or Workflow, got {service!r}")
            lowered = service.name.lower()
            if lowered.startswith("restate") or lowered == "openapi":
                raise ValueError(f"service name {service.name!r} is reserved (names starting with 'restate' and 'openapi')")
            if service.name in self.services and self.services[service.name] is not service:
                raise ValueError(f"two services are named {service.name!r}")
            self.services[service.name] = service
        return self

    def add_cron(self, cron: "Cron") -> "App":
        """Declare a schedule of one of this app's handlers (see `restate_pg.Cron`)."""
        from restate_pg.api.cron import Cron, InvalidCron, check_target

        if not isinstance(cron, Cron):
            raise TypeError(f"expected a restate_pg.Cron, got {cron!r}")
        if cron.name in self.crons and self.crons[cron.name] != cron:
            raise InvalidCron(f"two cron jobs are named {cron.name!r}")
        check_target(self.handler(*cron.target()), cron)
        self.crons[cron.name] = cron
        return self

    def handler(self, service: str, handler: str) -> typing.Optional[Handler]:
        definition = self.services.get(service)
        return definition.handlers.get(handler) if definition is not None else None

    def __repr__(self) -> str:
        return f"App({list(self.services)})"


def app(
    services: typing.Iterable[ServiceDefinition],
    protocol: typing.Optional[str] = None,
    identity_keys: typing.Optional[typing.List[str]] = None,
    journal_value_codec: CodecConfig = None,
    *,
    deployment: typing.Optional[str] = None,
    crons: typing.Iterable["Cron"] = (),
) -> App:
    """Build the application object from services, as `restate.app(...)` does.

    `protocol` and `identity_keys` concern how Restate's server reaches an SDK endpoint; there is
    no such hop here, so they are accepted and ignored. `journal_value_codec` (a
    `JournalValueCodec`, or an async provider of one) encodes what the handlers journal and
    decodes what they read back, as restate-sdk's endpoint does (`api/entry_codec.py`).
    `deployment` (restate-pg only) names the application version, a release tag or a commit say:
    an invocation is resumed only by workers of the version that started it (see the README on
    upgrades). Without it, the version is derived from the handlers' code. `crons` (restate-pg
    only) declares schedules of the app's handlers (`restate_pg.Cron`).
    """
    if deployment is not None and (not isinstance(deployment, str) or not deployment.strip()):
        raise ValueError("deployment must be a non-empty string, such as a release tag or a commit")
    return App(services, deployment=deployment, crons=crons, journal_value_codec=journal_value_codec)
