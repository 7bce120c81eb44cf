"""Django and restate-pg's ingress in one ASGI application.

Paths under /restate/ go to the ingress (Restate's HTTP API: POST /restate/call/Orders/fulfil,
/restate/send/..., /restate/invocation/..., /restate/awakeables/...), everything else to Django.
Handlers run in `python manage.py restate_worker` processes, not in this one.
"""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shopsite.settings")

from django.core.asgi import get_asgi_application  # noqa: E402

django_application = get_asgi_application()  # sets Django up first: the handlers' module imports models

from fastapi import FastAPI  # noqa: E402

from orders.services import app as restate_app  # noqa: E402
from restate_pg.contrib.django import database_url, restate_settings  # noqa: E402
from restate_pg.ingress import create_router  # noqa: E402

ingress = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
ingress.include_router(
    create_router(restate_app, database_url=database_url(), schema=restate_settings()["SCHEMA"], run_handlers=False)
)


async def application(scope, receive, send):
    if scope["type"] == "lifespan" or scope["path"].startswith("/restate/"):
        await ingress(scope, receive, send)  # its lifespan opens and closes the ingress's pool
    else:
        await django_application(scope, receive, send)
