"""restate-sdk's `restate.endpoint`: `app(...)` builds the application (here, no ASGI endpoint:
the ingress is `restate_pg.ingress.create_router`)."""

from restate_pg.api.app import app

__all__ = ["app"]
