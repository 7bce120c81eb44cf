"""The shop's web app: its own routes, and restate-pg's ingress mounted under /ingress.

`POST /orders` inserts the order row and starts its workflow in one transaction: both exist after
the commit, neither after a rollback. Serve it with
`uvicorn --factory examples.fastapi_app.main:create_api` (DATABASE_URL set), or with
`python -m examples.fastapi_app`, which also migrates and starts a PostgreSQL if none is set.
"""

from __future__ import annotations

import contextlib
import os
import typing

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

import restate_pg
from examples.fastapi_app import db, orders
from examples.fastapi_app.models import Order
from restate_pg.ingress import create_router
from restate_pg.store.database import resolve_database_url, to_psycopg_conninfo

#: "0" keeps the web processes from running handlers: run `restate-pg worker` processes instead.
RUN_HANDLERS_ENV = "SHOP_RUN_HANDLERS"


class NewOrder(BaseModel):
    customer_id: str = Field(min_length=1)
    item: str = Field(min_length=1)
    amount_cents: int = Field(gt=0)


def place_order(session: Session, new: NewOrder) -> tuple[int, restate_pg.RestateClientSendHandle]:
    """Insert the order and start its workflow in `session`'s transaction (the caller commits);
    the order's id and the workflow's handle."""
    order = Order(customer_id=new.customer_id, item=new.item, amount_cents=new.amount_cents, status="placed")
    session.add(order)
    session.flush()  # assigns order.id
    handle = restate_pg.enqueue(session, orders.run, order.id, key=str(order.id))
    return order.id, handle


def create_api(database_url: str | None = None, *, run_handlers: bool | None = None) -> FastAPI:
    """The app, on `database_url` (default `$DATABASE_URL`); `run_handlers` (default
    `$SHOP_RUN_HANDLERS`, else yes) makes each web process a worker too, for small deployments."""
    url = database_url or resolve_database_url(None)
    if url is None:
        raise RuntimeError("no database configured: set DATABASE_URL (or run `python -m examples.fastapi_app`)")
    conninfo = to_psycopg_conninfo(url)
    if run_handlers is None:
        run_handlers = os.environ.get(RUN_HANDLERS_ENV, "1") != "0"
    engine = db.configure(conninfo)
    ingress = create_router(orders.app, database_url=conninfo, run_handlers=run_handlers)
    client = restate_pg.create_client(conninfo, app=orders.app)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> typing.AsyncIterator[None]:
        async with client:  # the ingress router starts and stops its own engine
            yield
        engine.dispose()

    api = FastAPI(title="shop", lifespan=lifespan)
    api.include_router(ingress, prefix="/ingress")  # not /restate: Restate's own paths begin with /restate/

    @api.exception_handler(RequestValidationError)
    async def bad_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"][1:]) or "body"
        return JSONResponse({"message": f"{where}: {first['msg']}"}, status_code=400)

    @api.post("/orders", status_code=201)
    def create_order(new: NewOrder) -> dict[str, object]:
        with Session(engine) as session, session.begin():
            order_id, handle = place_order(session, new)
        return {"order_id": order_id, "invocation_id": handle.invocation_id}

    @api.get("/orders/{order_id}", response_model=None)
    def get_order(order_id: int) -> dict[str, object] | JSONResponse:
        with Session(engine) as session:
            order = session.get(Order, order_id)
            if order is None:
                return JSONResponse({"message": f"order {order_id} not found"}, status_code=404)
            return order.as_dict()

    @api.get("/customers/{customer_id}")
    async def get_customer(customer_id: str) -> dict[str, int]:
        summary: dict[str, int] = await client.object_call(orders.summary, customer_id)
        return summary

    return api
