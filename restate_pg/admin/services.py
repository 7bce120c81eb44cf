"""Restate's admin paths for services and the server itself (deployments: `admin/deployments.py`).

Services are read from the registry workers write when they start (`service`, `deployment`
tables), so an admin process that hosts no handlers still lists every service in use.
"""

from __future__ import annotations

import base64
import hashlib
import typing
from datetime import timedelta

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from restate_pg.admin.errors import AdminError
from restate_pg.admin.openapi import service_openapi
from restate_pg.api.durations import InvalidDuration, format_duration, parse_duration
from restate_pg.api.metadata import DEFAULT_RETENTION, SERVICE_TYPES
from restate_pg.core import hints
from restate_pg.core.ids import deployment_id_from_digest, is_deployment_id
from restate_pg.store.driver import state_version
from restate_pg.validation import check_json
from restate_pg.services.gateway import Gateway

#: Admin API versions this router answers as (Restate's /version reports a range): 1 is the
#: unversioned paths, 2 to 4 the same routes under /v2, /v3 and /v4, which Restate's CLI 1.7 calls.
MIN_ADMIN_API_VERSION = 1
MAX_ADMIN_API_VERSION = 4
#: The Restate server version whose admin API this one follows. Restate's CLI reads `version` as a
#: Restate version and picks features by it (JSON `/query` for `invocations describe`, `kv get`);
#: restate-pg's own version rides along as semver build metadata, which comparisons ignore.
RESTATE_VERSION = "1.7.0"
VERSION_PREFIXES = tuple(f"/v{n}" for n in range(2, MAX_ADMIN_API_VERSION + 1))

#: `PATCH /services/{name}` fields: Restate's name, and the registry column.
_MODIFIABLE = {
    "idempotency_retention": "idempotency_retention",
    "workflow_completion_retention": "workflow_retention",
    "journal_retention": "journal_retention",
    "inactivity_timeout": "inactivity_timeout",
    "abort_timeout": "abort_timeout",
}


def render_service(row: typing.Mapping[str, typing.Any], engine: Gateway) -> typing.Dict[str, typing.Any]:
    """A registry row as Restate's `ServiceMetadata`: what the code said, overridden by what
    operators changed."""
    registered = dict(row["registered"] or {})
    described: typing.Dict[str, typing.Any] = {
        **registered,
        "name": row["name"],
        "ty": SERVICE_TYPES[row["ty"]],
        "handlers": [_without_nulls(handler) for handler in row["handlers"]],
        "deployment_id": restate_deployment_id(row["deployment_id"]),
        "deployment_name": row["deployment_id"],  # restate-pg's own: as workers name it
        "revision": row["revision"],
        "public": row["public"],
    }
    described.setdefault("idempotency_retention", format_duration(DEFAULT_RETENTION))
    described.setdefault("journal_retention", format_duration(DEFAULT_RETENTION))
    described.setdefault("inactivity_timeout", format_duration(timedelta(seconds=engine.default_inactivity_timeout)))
    for restate_name, column in _MODIFIABLE.items():
        if row[column] is not None:
            described[restate_name] = format_duration(timedelta(seconds=row[column]))
    return _without_nulls(described)


def _without_nulls(described: typing.Mapping[str, typing.Any]) -> typing.Dict[str, typing.Any]:
    """Restate omits unset fields; its CLI refuses `null` where it expects a map (`metadata`)."""
    return {k: v for k, v in described.items() if v is not None}


def add_service_routes(router: APIRouter, engine: Gateway) -> None:
    """Mount the service, health and version paths on `router` (deployments: `admin.deployments`)."""
    store = engine.store

    async def one_service(name: str) -> typing.Dict[str, typing.Any]:
        rows = await store.list_services(name)
        if not rows:
            raise AdminError(404, f"service '{name}' not found")
        return render_service(rows[0], engine)

    @router.get("/health", include_in_schema=False)
    async def health() -> Response:
        await engine.check_health()  # healthy means the database answers, within a second
        return JSONResponse({})

    @router.get("/version", include_in_schema=False)
    async def version() -> Response:
        from importlib.metadata import PackageNotFoundError
        from importlib.metadata import version as package_version

        try:
            ours = package_version("restate-pg")
        except PackageNotFoundError:
            ours = "unknown"
        ours = f"{RESTATE_VERSION}+restate-pg.{ours}"
        # `features` (experimental features, none here) is required by Restate's CLI to accept the answer
        return JSONResponse({"version": ours, "min_admin_api_version": MIN_ADMIN_API_VERSION,
                             "max_admin_api_version": MAX_ADMIN_API_VERSION, "features": {}})

    @router.get("/services", include_in_schema=False)
    async def list_services() -> Response:
        return JSONResponse({"services": [render_service(row, engine) for row in await store.list_services()]})

    @router.get("/services/{name}", include_in_schema=False)
    async def get_service(name: str) -> Response:
        return JSONResponse(await one_service(name))

    @router.get("/services/{name}/handlers", include_in_schema=False)
    async def list_handlers(name: str) -> Response:
        return JSONResponse({"handlers": (await one_service(name))["handlers"]})

    @router.get("/services/{name}/handlers/{handler}", include_in_schema=False)
    async def get_handler(name: str, handler: str) -> Response:
        for described in (await one_service(name))["handlers"]:
            if described["name"] == handler:
                return JSONResponse(described)
        raise AdminError(404, f"handler '{name}/{handler}' not found")

    @router.get("/services/{name}/openapi", include_in_schema=False)
    async def openapi(name: str) -> Response:
        return JSONResponse(service_openapi(await one_service(name)))

    @router.patch("/services/{name}", include_in_schema=False)
    async def modify_service(name: str, request: Request) -> Response:
        body = await _json_object(request)
        settings: typing.Dict[str, typing.Any] = {}
        for field, value in body.items():
            if value is None and (field == "public" or field in _MODIFIABLE):
                continue  # unchanged: Restate's CLI sends every field, null for those it leaves
            if field == "public":
                if not isinstance(value, bool):
                    raise AdminError(400, "'public' must be true or false")
                settings["public"] = value
            elif field in _MODIFIABLE:
                settings[_MODIFIABLE[field]] = _seconds(field, value)
            else:
                raise AdminError(400, f"unknown field '{field}' (expected 'public' or one of {', '.join(_MODIFIABLE)})")
        if not await store.modify_service(name, settings):
            raise AdminError(404, f"service '{name}' not found")
        await engine.load_overrides()
        await store.notify(engine.work_channel, hints.SERVICES_CHANGED)  # other processes re-read their settings
        return JSONResponse(await one_service(name))

    @router.post("/services/{name}/state", include_in_schema=False)
    async def replace_state(name: str, request: Request) -> Response:
        body = await _json_object(request)
        service = await one_service(name)
        if service["ty"] not in ("VirtualObject", "Workflow"):
            raise AdminError(400, f"service '{name}' has no state: it is not a virtual object or a workflow")
        key, new_state, version = body.get("object_key"), body.get("new_state"), body.get("version")
        if not isinstance(key, str):
            raise AdminError(400, "'object_key' must be a string")
        if not isinstance(new_state, dict):
            raise AdminError(400, "'new_state' must be an object of state names to byte arrays")
        if version is not None and not isinstance(version, str):
            raise AdminError(400, "'version' must be a string")
        entries = {entry: _bytes(entry, value) for entry, value in new_state.items()}
        if not await store.change_state(name, key, entries, replace=True, expected_version=version):
            raise AdminError(409, f"the state of {name}/{key} changed: it is no longer at version '{version}'")
        return Response(status_code=202)

    @router.get("/services/{name}/state/{key}", include_in_schema=False)
    async def read_state(name: str, key: str) -> Response:
        """restate-pg's own: an object key's state with its version, for `POST .../state`."""
        await one_service(name)
        state = await store.load_state(name, key)
        return JSONResponse({"object_key": key, "version": state_version(state),
                             "state": {entry: list(value) for entry, value in state.items()}})

    @router.get("/subscriptions", include_in_schema=False)
    async def list_subscriptions() -> Response:
        return JSONResponse({"subscriptions": []})  # restate-pg reads no Kafka topics


def restate_deployment_id(name: str) -> str:
    """The id the admin API shows for a deployment: its own when it has Restate's shape (derived
    ones do), else one derived from its name (`2026-11-29.1`), since Restate's CLI reads no other."""
    if is_deployment_id(name):
        return name
    return deployment_id_from_digest(hashlib.sha256(name.encode()).digest())


async def json_body(request: Request, kind: type, what: str, opaque: typing.Collection[str] = ()) -> typing.Any:
    """The request's JSON body, of type `kind` (`what` names it in the 400), every string of it
    (but the `opaque` fields, stored as bytes) free of what PostgreSQL cannot hold."""
    try:
        body = await request.json()
    except ValueError:
        raise AdminError(400, f"the request body must be {what}") from None
    if not isinstance(body, kind):
        raise AdminError(400, f"the request body must be {what}")
    check_json(body, opaque=opaque)
    return body


async def _json_object(request: Request, opaque: typing.Collection[str] = ()) -> typing.Dict[str, typing.Any]:
    """The request's JSON object (see `json_body`)."""
    return typing.cast(typing.Dict[str, typing.Any], await json_body(request, dict, "a JSON object", opaque))


def _seconds(field: str, value: typing.Any) -> float:
    if not isinstance(value, str):
        raise AdminError(400, f"'{field}' must be a duration such as \"1 day\", \"5h\" or \"PT30M\"")
    try:
        return parse_duration(value).total_seconds()
    except InvalidDuration as exc:
        raise AdminError(400, f"'{field}': {exc}") from None


def _bytes(entry: str, value: typing.Any) -> bytes:
    """A state value as Restate's admin API sends one: an array of byte values (or, for
    convenience, a base64 string)."""
    if isinstance(value, list) and all(isinstance(b, int) and 0 <= b <= 255 for b in value):
        return bytes(value)
    if isinstance(value, str):
        try:
            return base64.b64decode(value, validate=True)
        except ValueError:
            pass
    raise AdminError(400, f"state '{entry}' must be an array of byte values (0-255)")
