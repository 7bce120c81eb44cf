"""The operator UI: invocations, journal timelines, actions, state, services, schedules, SQL and
an overview, as server-rendered pages (Jinja2 and a vendored htmx; no build step, no CDN), served
by the admin API at /ui. It reads through the store's read-only queries and acts through the
services, like the admin API (docs/architecture.md)."""

from restate_pg.ui.router import create_ui_router

__all__ = ["create_ui_router"]
