"""The admin paths of flow-control rules, in Restate's shape: `GET /limits/rules`,
`PUT /limits/rules` (a batch of upserts, each with an optional precondition: all or none) and
`POST /limits/rules/bulk-delete`; plus `GET /limits/queues`, each scope's and key's queue."""

from __future__ import annotations

import typing

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from restate_pg.admin.errors import AdminError
from restate_pg.admin.services import json_body
from restate_pg.services.gateway import Gateway
from restate_pg.services.rules import FlowRuleBook, InvalidRule, PreconditionFailed


async def _json_array(request: Request) -> typing.List[typing.Any]:
    return typing.cast(typing.List[typing.Any], await json_body(request, list, "a JSON array of rules"))


def add_rule_routes(router: APIRouter, engine: Gateway) -> None:
    """Mount /limits/rules and /limits/queues on `router`."""
    book = FlowRuleBook(engine.store)

    async def answer(action: typing.Awaitable[typing.Any]) -> Response:
        try:
            return JSONResponse(await action)
        except InvalidRule as exc:
            raise AdminError(400, str(exc)) from None
        except PreconditionFailed as exc:
            raise AdminError(409, f"the precondition of rule {exc.pattern!r} failed: nothing was changed") from None

    @router.get("/limits/rules", include_in_schema=False)
    async def list_rules() -> Response:
        return await answer(_wrapped(book.list()))

    @router.put("/limits/rules", include_in_schema=False)
    async def upsert_rules(request: Request) -> Response:
        return await answer(book.upsert(await _json_array(request)))

    @router.post("/limits/rules/bulk-delete", include_in_schema=False)
    async def delete_rules(request: Request) -> Response:
        return await answer(book.delete(await _json_array(request)))

    @router.get("/limits/queues", include_in_schema=False)
    async def list_queues() -> Response:
        return JSONResponse({"queues": await engine.store.flow_queues()})


async def _wrapped(rules: typing.Awaitable[typing.List[typing.Dict[str, typing.Any]]]) -> typing.Dict[str, typing.Any]:
    return {"rules": await rules}
