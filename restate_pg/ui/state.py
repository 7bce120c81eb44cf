"""State: the object keys (and workflow ids) of a service that hold state, each key's entries
decoded (JSON pretty-printed, other text as text, bytes as hex), and an edit of a key's JSON
entries that only applies if the state still has the version it was read at (as the admin API's
`POST /services/{name}/state`)."""

from __future__ import annotations

import json
import typing

from fastapi import APIRouter, Request
from fastapi.responses import Response

from restate_pg.services.gateway import Gateway
from restate_pg.store.operators import state_version
from restate_pg.ui.pages import UIError, decoded, form, registered_service, render
from restate_pg.validation import check_json

KEYS_PAGE = 100
_KEYED = ("virtual_object", "workflow")


def _editable(state: typing.Mapping[str, bytes]) -> typing.Tuple[str, typing.List[str]]:
    """The JSON entries as one JSON object to edit, and the names of those that are not JSON."""
    values, opaque = {}, []
    for name, value in sorted(state.items()):
        kind, text = decoded(value)
        if kind == "json":
            values[name] = json.loads(text)
        else:
            opaque.append(name)
    return json.dumps(values, indent=2, ensure_ascii=False), opaque


def add_state_pages(router: APIRouter, engine: Gateway) -> None:
    store = engine.store

    async def keyed_service(name: str) -> typing.Mapping[str, typing.Any]:
        row = await registered_service(engine, name)
        if row["ty"] not in _KEYED:
            raise UIError(400, f"service '{name}' has no state: it is not a virtual object or a workflow")
        return row

    @router.get("/state", name="ui_state")
    async def state_services(request: Request) -> Response:
        services = [row for row in await store.list_services() if row["ty"] in _KEYED]
        return render(request, "state.html", services=services)

    @router.get("/state/{service}", name="ui_state_keys")
    async def state_keys(request: Request, service: str) -> Response:
        await keyed_service(service)
        after, prefix = request.query_params.get("after") or None, request.query_params.get("prefix") or None
        rows = await store.state_keys(service, after=after, prefix=prefix, limit=KEYS_PAGE + 1)
        more, rows = len(rows) > KEYS_PAGE, rows[:KEYS_PAGE]
        return render(request, "state_keys.html", service=service, keys=rows, prefix=prefix or "",
                      next_after=rows[-1]["key"] if more else None)

    async def key_page(request: Request, service: str, key: str, status: int = 200, **extra: typing.Any) -> Response:
        state = await store.load_state(service, key)
        text, opaque = _editable(state)
        entries = [(name, decoded(value)) for name, value in sorted(state.items())]
        return render(request, "state_key.html", status, service=service, key=key, entries=entries,
                      version=state_version(state), editable=text, opaque=opaque, **extra)

    @router.get("/state/{service}/{key}", name="ui_state_key")
    async def state_key(request: Request, service: str, key: str) -> Response:
        await keyed_service(service)
        return await key_page(request, service, key)

    @router.post("/state/{service}/{key}", name="ui_state_edit")
    async def edit_state(request: Request, service: str, key: str) -> Response:
        await keyed_service(service)
        fields = await form(request)
        version, text = str(fields.get("version") or ""), str(fields.get("state") or "")
        try:
            values = json.loads(text)
        except ValueError as exc:
            raise UIError(400, f"the state must be a JSON object of entry names to values ({exc})") from None
        if not isinstance(values, dict):
            raise UIError(400, "the state must be a JSON object of entry names to values")
        check_json(values)
        current = await store.load_state(service, key)
        # entries that are not JSON are not in the form: they are kept as they are
        entries = {name: value for name, value in current.items() if decoded(value)[0] != "json"}
        entries.update({name: json.dumps(value).encode() for name, value in values.items()})
        if not await store.change_state(service, key, entries, replace=True, expected_version=version):
            return await key_page(request, service, key, 409, message=(
                f"not saved: the state of {service}/{key} changed since it was read (version '{version}'); "
                "here it is as it is now"))
        return await key_page(request, service, key, message="saved")
