"""Services and deployments: each service's handlers with their types and input/output schemas,
its settings (retentions, timeouts, public) editable as the admin API's `PATCH /services/{name}`
changes them, a link to its OpenAPI document, and a "try it" form that invokes a handler through
the ingress (an HTTP request from this process to the ingress URL the form names)."""

from __future__ import annotations

import json
import typing
from datetime import timedelta
from urllib.parse import quote

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import Response

from restate_pg.api.durations import InvalidDuration, format_duration, parse_duration
from restate_pg.core import hints
from restate_pg.services.gateway import Gateway
from restate_pg.store.driver import SERVICE_SETTINGS
from restate_pg.ui.pages import UIError, form, registered_service, render

#: The durations a form may change, as the registry names them.
DURATIONS = tuple(name for name in SERVICE_SETTINGS if name != "public")
#: How long "try it" waits for the ingress's answer.
TRY_TIMEOUT_S = 30.0


def _settings(row: typing.Mapping[str, typing.Any]) -> typing.Dict[str, str]:
    """The operator's overrides as durations ("" where the code's setting applies)."""
    return {name: "" if row[name] is None else format_duration(timedelta(seconds=row[name])) for name in DURATIONS}


def _default_ingress(request: Request) -> str:
    """A guess at the ingress beside this admin port: the same host, port 8080 (`restate-pg dev`)."""
    return f"{request.url.scheme}://{request.url.hostname}:8080"


def add_catalog_pages(router: APIRouter, engine: Gateway) -> None:
    store = engine.store

    async def service_row(name: str) -> typing.Mapping[str, typing.Any]:
        return await registered_service(engine, name)

    async def service_page(request: Request, name: str, status: int = 200, **extra: typing.Any) -> Response:
        row = await service_row(name)
        context = {"ingress": _default_ingress(request), "body": "", "key": "", **extra}
        return render(request, "service.html", status, svc=row, settings=_settings(row), durations=DURATIONS,
                      openapi=f"{request.url_for('ui_services').path.rsplit('/ui/', 1)[0]}/services/{quote(name)}/openapi",
                      **context)

    @router.get("/services", name="ui_services")
    async def services(request: Request) -> Response:
        return render(request, "services.html", services=await store.list_services(),
                      deployments=await store.list_deployments())

    @router.get("/services/{name}", name="ui_service")
    async def service(request: Request, name: str) -> Response:
        return await service_page(request, name)

    @router.post("/services/{name}/settings", name="ui_service_settings")
    async def change_settings(request: Request, name: str) -> Response:
        await service_row(name)
        fields = await form(request)
        settings: typing.Dict[str, typing.Any] = {"public": fields.get("public") == "on"}
        for field in DURATIONS:
            value = str(fields.get(field) or "").strip()
            if value:
                try:
                    settings[field] = parse_duration(value).total_seconds()
                except InvalidDuration as exc:
                    raise UIError(400, f"'{field}': {exc}") from None
        await store.modify_service(name, settings)
        await engine.load_overrides()
        await store.notify(engine.work_channel, hints.SERVICES_CHANGED)  # other processes re-read theirs
        return await service_page(request, name, message="settings saved")

    @router.post("/services/{name}/try", name="ui_service_try")
    async def try_it(request: Request, name: str) -> Response:
        row = await service_row(name)
        fields = await form(request)
        handler, key = str(fields.get("handler") or ""), str(fields.get("key") or "")
        ingress, body = str(fields.get("ingress") or "").rstrip("/"), str(fields.get("body") or "")
        if handler not in [h["name"] for h in row["handlers"]]:
            raise UIError(400, f"service '{name}' has no handler '{handler}'")
        if row["ty"] != "service" and not key:
            raise UIError(400, f"'{name}' is keyed: give an object key (or workflow id)")
        if not ingress.startswith(("http://", "https://")):
            raise UIError(400, f"the ingress URL must start with http:// or https://, got '{ingress}'")
        if body:
            try:
                json.loads(body)
            except ValueError as exc:
                raise UIError(400, f"the input must be JSON ({exc})") from None
        path = "/".join(quote(part, safe="") for part in ([name, key, handler] if row["ty"] != "service" else [name, handler]))
        try:
            async with httpx.AsyncClient(timeout=TRY_TIMEOUT_S) as client:
                answer = await client.post(f"{ingress}/{path}", content=body.encode(),
                                           headers={"content-type": "application/json"} if body else {})
        except httpx.HTTPError as exc:
            raise UIError(502, f"the ingress at {ingress} did not answer: {exc}") from None
        return render(request, "_try_answer.html", target=f"{ingress}/{path}", status=answer.status_code,
                      text=answer.text, invocation_id=answer.headers.get("x-restate-id"))
