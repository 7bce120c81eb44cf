"""An OpenAPI 3.1 description of one service's ingress endpoints (`GET /services/{name}/openapi`),
built from the metadata its deployment registered, as Restate describes a service."""

from __future__ import annotations

import typing

_SEND_RESPONSE = {
    "type": "object",
    "properties": {"invocationId": {"type": "string"}, "status": {"enum": ["Accepted", "PreviouslyAccepted"]}},
    "required": ["invocationId", "status"],
}
_ERROR = {
    "type": "object",
    "properties": {"code": {"type": "integer"}, "message": {"type": "string"}},
    "required": ["message"],
}


def service_openapi(service: typing.Mapping[str, typing.Any]) -> typing.Dict[str, typing.Any]:
    """The OpenAPI document of `service` (a `ServiceMetadata`)."""
    name = service["name"]
    keyed = service["ty"] != "Service"
    paths: typing.Dict[str, typing.Any] = {}
    for handler in service["handlers"]:
        if handler.get("public") is False:
            continue
        base = f"/{name}/{{key}}/{handler['name']}" if keyed else f"/{name}/{handler['name']}"
        parameters = [{"name": "key", "in": "path", "required": True, "schema": {"type": "string"}}] if keyed else []
        request = _request_body(handler)
        call = {
            "operationId": handler["name"],
            "summary": handler.get("documentation") or f"Call {name}/{handler['name']}",
            "parameters": parameters,
            "responses": {
                "200": {"description": "the handler's result",
                        "content": {"application/json": {"schema": handler.get("output_json_schema", {})}}},
                "default": {"description": "a terminal failure, with its status code",
                            "content": {"application/json": {"schema": _ERROR}}},
            },
        }
        send = {
            "operationId": f"{handler['name']}Send",
            "summary": f"Send to {name}/{handler['name']} without waiting for the result",
            "parameters": parameters + [
                {"name": "delay", "in": "query", "required": False, "schema": {"type": "string"},
                 "description": "start the invocation after this duration, such as 10s or PT1M"}],
            "responses": {"202": {"description": "accepted",
                                  "content": {"application/json": {"schema": _SEND_RESPONSE}}}},
        }
        if request is not None:
            call["requestBody"] = request
            send["requestBody"] = request
        paths[base] = {"post": call}
        paths[f"{base}/send"] = {"post": send}
    return {
        "openapi": "3.1.0",
        "info": {"title": name, "version": str(service.get("revision", 1)),
                 **({"description": service["documentation"]} if service.get("documentation") else {})},
        "paths": paths,
    }


def _request_body(handler: typing.Mapping[str, typing.Any]) -> typing.Optional[typing.Dict[str, typing.Any]]:
    if handler.get("input_description") == "none":
        return None
    schema = handler.get("input_json_schema")
    content_type = "application/json" if schema is not None else "*/*"
    return {"required": True, "content": {content_type: {"schema": schema or {}}}}
