"""`restate_pg.app([...])`: the set of services a process hosts.

The same object is handed to the CLI (`restate-pg worker module:app`), to the ingress router and
to the worker, so that all of them agree on which handlers exist.
"""

from __future__ import annotations

import typing

from restate_pg.api.definitions import Handler, ServiceDefinition


class App:
    """The services of one application, by name."""

    def __init__(self, services: typing.Iterable[ServiceDefinition] = ()) -> None:
        self.services: typing.Dict[str, ServiceDefinition] = {}
        for service in services:
            self.bind(service)

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

    def handler(self, service: str, handler: str) -> typing.Optional[Handler]:
        definition = self.services.get(service)
        return definition.handlers.get(handler) if definition is not None else None

    def __repr__(self) -> str:
        return f"App({list(self.services)})"


def app(
    services: typing.Iterable[ServiceDefinition],
    protocol: typing.Optional[str] = None,
    identity_keys: typing.Optional[typing.List[str]] = None,
    journal_value_codec: typing.Any = None,
) -> App:
    """Build the application object from services, as `restate.app(...)` does.

    `protocol` and `identity_keys` concern how Restate's server reaches an SDK endpoint; there is
    no such hop here, so they are accepted and ignored. Journal value codecs are not supported yet.
    """
    if journal_value_codec is not None:
        raise NotImplementedError("journal_value_codec is not supported by restate-pg yet")
    return App(services)
