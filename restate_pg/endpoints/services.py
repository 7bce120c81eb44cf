"""An SDK endpoint's services as the ingress and in-process callers see them: restate-pg's own
service and handler definitions (`api/definitions.py`), built from the endpoint's manifest, so
that routing, input rules, visibility and answers are the same for in-process and remote handlers.
Their functions are never called: the endpoint runs them."""

from __future__ import annotations

import functools
import typing

from restate_pg.api.completions import check_completion
from restate_pg.api.definitions import Handler, Service, ServiceDefinition, VirtualObject, Workflow
from restate_pg.api.inputs import InputCheck, is_json_content_type
from restate_pg.api.serde import BytesSerde
from restate_pg.endpoints.deployment import EndpointDeployment, EndpointHandler

_DEFINITIONS: typing.Dict[str, typing.Type[ServiceDefinition]] = {
    "service": Service, "virtual_object": VirtualObject, "workflow": Workflow}


class RemoteHandler(Handler):
    """A handler that runs on an SDK endpoint."""

    endpoint: EndpointHandler

    @functools.cached_property
    def input_check(self) -> InputCheck:
        """The input checked against the JSON schema the endpoint publishes for it (as in-process
        handlers' against their type): input its handler could never take is refused with 400
        instead of failing the invocation, retried, for as long as its retry policy says."""
        schema = self.endpoint.input_schema
        if schema is None or not is_json_content_type(self.accept):
            return InputCheck.build(None, self.input_serde)
        return InputCheck(lambda body: check_completion(body, schema), True)


async def _runs_on_the_endpoint(*args: typing.Any) -> typing.Any:
    raise RuntimeError("this handler runs on its SDK endpoint, not in this process")


def remote_services(deployment: EndpointDeployment, names: typing.Iterable[str]) -> typing.Dict[str, ServiceDefinition]:
    """The definitions of the services `names` of `deployment` (those it is the latest of)."""
    wanted = set(names)
    services: typing.Dict[str, ServiceDefinition] = {}
    for (service_name, _), endpoint in sorted(deployment.handlers.items()):
        if service_name not in wanted:
            continue
        definition = services.get(service_name)
        if definition is None:
            definition = services[service_name] = _DEFINITIONS[endpoint.service_ty](service_name)
            definition.ingress_private = endpoint.ingress_private
        handler = RemoteHandler(
            service=definition, name=endpoint.name, kind=endpoint.handler_ty,  # type: ignore[arg-type]
            fn=_runs_on_the_endpoint, takes_input=endpoint.takes_input, input_serde=BytesSerde(),
            output_serde=BytesSerde(), accept=endpoint.accept, content_type=endpoint.content_type,
            input_type=None if endpoint.input_required else typing.Optional[bytes],
            ingress_private=endpoint.handler_private,
        )
        handler.endpoint = endpoint
        definition.handlers[endpoint.name] = handler
    return services
