"""The HTTP ingress: a FastAPI router serving Restate's ingress contract."""

from restate_pg.ingress.router import create_router

__all__ = ["create_router"]
