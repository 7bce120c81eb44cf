"""Restate's admin paths for deployments: the application versions restate-pg's workers run
(in-process), and SDK endpoints registered as Restate registers them (`POST /deployments`).

Restate's admin API versions differ in two ways here, and Restate's CLI picks the version: on /v2
(and Restate's /v1) `force` defaults to true and registering a known uri without it is a 409; on
the unversioned paths and /v3, /v4 a known uri is answered 200 with its deployment, and `PUT
/deployments/{id}` is refused for `PATCH`.
"""

from __future__ import annotations

import re
import typing
from datetime import datetime, timezone
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from restate_pg.admin.errors import AdminError
from restate_pg.admin.services import _json_object, _without_nulls, render_service, restate_deployment_id
from restate_pg.services import outcomes
from restate_pg.services.answers import IN_PROCESS_REMOVAL, deployment_reply
from restate_pg.services.deployments import Endpoints
from restate_pg.services.gateway import Gateway

_REGISTER_FIELDS = {"uri", "additional_headers", "use_http_11", "force", "breaking", "dry_run", "metadata"}
_UPDATE_FIELDS = {"uri", "additional_headers", "use_http_11", "overwrite", "dry_run"}
_OLD_API = re.compile(r"/v[12]/deployments")


def add_deployment_routes(router: APIRouter, engine: Gateway) -> None:
    """Mount /deployments (list, register) and /deployments/{id} (get, update, remove)."""
    store = engine.store
    endpoints = Endpoints(store, engine.work_channel)

    async def stored(deployment_id: str) -> typing.Mapping[str, typing.Any]:
        """A deployment by its id, its name, or the Restate-shaped id the admin API shows for it."""
        rows = await store.list_deployments(deployment_id) or [
            row for row in await store.list_deployments() if restate_deployment_id(row["id"]) == deployment_id]
        if not rows:
            raise AdminError(404, f"deployment '{deployment_id}' not found")
        return rows[0]

    async def detailed(row: typing.Mapping[str, typing.Any]) -> typing.Dict[str, typing.Any]:
        """Restate's `DetailedDeploymentResponse`: the services with their full metadata."""
        latest = {service["name"]: service for service in await store.list_services()}
        described = render_deployment(row, latest)
        revisions = {entry["name"]: entry["revision"] for entry in described["services"]}
        described["services"] = [
            render_service(latest[doc["name"]], engine) if latest.get(doc["name"], {}).get("deployment_id") == row["id"]
            else _without_nulls({**doc, "handlers": [_without_nulls(h) for h in doc.get("handlers", [])],
                                 "deployment_id": described["id"], "revision": revisions[doc["name"]],
                                 "public": doc.get("public", True)})
            for doc in row["services"] if isinstance(doc, dict)]
        return described

    @router.get("/deployments", include_in_schema=False)
    async def list_deployments() -> Response:
        latest = {row["name"]: row for row in await store.list_services()}
        return JSONResponse({"deployments": [render_deployment(row, latest) for row in await store.list_deployments()]})

    @router.get("/deployments/{deployment_id}", include_in_schema=False)
    async def get_deployment(deployment_id: str) -> Response:
        return JSONResponse(await detailed(await stored(deployment_id)))

    @router.post("/deployments", include_in_schema=False)
    async def register_deployment(request: Request) -> Response:
        body = await _json_object(request)
        _only(body, _REGISTER_FIELDS)
        if "arn" in body:
            raise AdminError(400, "restate-pg registers no Lambda deployments: give the endpoint's 'uri'")
        old_api = bool(_OLD_API.search(request.url.path))
        force = _flag(body, "force", default=old_api)
        outcome = await endpoints.register(
            body.get("uri"), body.get("additional_headers"), use_http_11=_flag(body, "use_http_11"), force=force,
            breaking=_flag(body, "breaking"), dry_run=_flag(body, "dry_run"))
        if not isinstance(outcome, outcomes.EndpointDeployment):
            raise _failure(outcome)
        if outcome.result == "unchanged" and old_api:
            raise AdminError(409, f"Conflict: deployment {outcome.id} already exists")
        status = 201 if outcome.result == "created" or (outcome.result == "overwritten" and old_api) else 200
        return JSONResponse(registered(outcome), status_code=status, headers={"location": f"deployments/{outcome.id}"})

    @router.patch("/deployments/{deployment_id}", include_in_schema=False)
    async def update_deployment(deployment_id: str, request: Request) -> Response:
        return await update(deployment_id, request)

    @router.put("/deployments/{deployment_id}", include_in_schema=False)
    async def replace_deployment(deployment_id: str, request: Request) -> Response:
        if not _OLD_API.search(request.url.path):
            raise AdminError(405, "PUT deployment is deprecated, use PATCH instead")
        return await update(deployment_id, request)

    async def update(deployment_id: str, request: Request) -> Response:
        body = await _json_object(request)
        _only(body, _UPDATE_FIELDS)
        row = await stored(deployment_id)
        use_http_11 = body.get("use_http_11")
        if use_http_11 is not None and not isinstance(use_http_11, bool):
            raise AdminError(400, "The request field 'use_http_11' is invalid. Reason: it must be true or false")
        outcome = await endpoints.update(
            row["id"], body.get("uri"), body.get("additional_headers"), use_http_11=use_http_11,
            overwrite=_flag(body, "overwrite"), dry_run=_flag(body, "dry_run"))
        if not isinstance(outcome, outcomes.DeploymentUpdated):
            raise _failure(outcome)
        return JSONResponse(await detailed(await stored(row["id"])))

    @router.delete("/deployments/{deployment_id}", include_in_schema=False)
    async def remove_deployment(deployment_id: str, request: Request) -> Response:
        row = await stored(deployment_id)
        if row["uri"] is None:
            raise AdminError(501, IN_PROCESS_REMOVAL)
        if request.query_params.get("force") != "true":
            raise AdminError(409, f"deployment {row['id']} is removed only with force=true: graceful removal (waiting "
                             "for its invocations to finish) is not supported, as in Restate")
        outcome = await endpoints.remove(row["id"])
        if not isinstance(outcome, outcomes.DeploymentRemoved):
            raise _failure(outcome)
        return Response(status_code=202)


def registered(outcome: outcomes.EndpointDeployment) -> typing.Dict[str, typing.Any]:
    """Restate's `RegisterDeploymentResponse`."""
    return _without_nulls({
        "id": outcome.id,
        "services": [_service(doc) for doc in outcome.services],
        "min_protocol_version": outcome.min_protocol_version,
        "max_protocol_version": outcome.max_protocol_version,
        "sdk_version": outcome.sdk_version,
    })


def _service(doc: typing.Mapping[str, typing.Any]) -> typing.Dict[str, typing.Any]:
    return _without_nulls({**doc, "handlers": [_without_nulls(h) for h in doc.get("handlers", [])]})


def render_deployment(row: typing.Mapping[str, typing.Any],
                      latest: typing.Mapping[str, typing.Mapping[str, typing.Any]]) -> typing.Dict[str, typing.Any]:
    """A deployment as Restate's `DeploymentResponse`, plus restate-pg's own fields (its name,
    compatibility, live workers, in-flight invocations)."""
    names = [entry["name"] if isinstance(entry, dict) else entry for entry in row["services"]]
    own = {entry["name"]: entry.get("revision", 0) for entry in row["services"] if isinstance(entry, dict)}
    endpoint = row["uri"] is not None
    described = {
        "id": restate_deployment_id(row["id"]),
        "name": row["id"],
        # in-process: workers pull from the database, no endpoint is called, so the uri only names it
        "uri": row["uri"] if endpoint else "restate-pg://deployment/" + quote(row["id"], safe=""),
        "protocol_type": ("BidiStream" if row["protocol_mode"] == "BIDI_STREAM" else "RequestResponse"),
        "http_version": "HTTP/1.1" if not endpoint or row["use_http_11"] else "HTTP/2.0",
        "additional_headers": row["additional_headers"] or None,
        "min_protocol_version": row["min_protocol_version"] if endpoint else 0,  # in-process: no service protocol
        "max_protocol_version": row["max_protocol_version"] if endpoint else 0,
        "sdk_version": row["sdk_version"],
        "created_at": _utc(row["created_at"]),
        # a service's revision: the latest's when this deployment is its latest, else its own (or 0)
        "services": [{"name": name, "revision": latest[name]["revision"]
                      if name in latest and latest[name]["deployment_id"] == row["id"] else own.get(name, 0)}
                     for name in names],
        "compatible_with": row["compatible_with"],
        "last_seen_at": _utc(row["last_seen_at"]),
        "workers": row["workers"],
        "in_flight_invocations": row["in_flight"],
    }
    return {key: value for key, value in described.items() if value is not None}


def _failure(outcome: outcomes.Outcome) -> AdminError:
    reply = deployment_reply(outcome)
    if reply is None:  # an outcome this path does not expect
        return AdminError(500, f"internal error: unexpected outcome {type(outcome).__name__}")
    return AdminError(*reply)


def _only(body: typing.Mapping[str, typing.Any], allowed: typing.Collection[str]) -> None:
    unknown = sorted(set(body) - set(allowed) - {"arn"})
    if unknown:
        raise AdminError(400, f"unknown field(s) {', '.join(unknown)} (expected {', '.join(sorted(allowed))})")


def _flag(body: typing.Mapping[str, typing.Any], name: str, default: bool = False) -> bool:
    value = body.get(name)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise AdminError(400, f"The request field '{name}' is invalid. Reason: it must be true or false")
    return value


def _utc(moment: datetime) -> str:
    """RFC 3339 in UTC with a `Z`, the one form Restate's CLI parses."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
