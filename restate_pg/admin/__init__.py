"""The admin API: operators steer invocations over HTTP, on a router mounted apart from the
ingress so that it can be protected (or not exposed) on its own."""

from restate_pg.admin.metrics import create_metrics_router
from restate_pg.admin.router import create_admin_app, create_admin_router

__all__ = ["create_admin_app", "create_admin_router", "create_metrics_router"]
