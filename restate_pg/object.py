"""restate-sdk's `restate.object`."""

from restate_pg.api.definitions import VirtualObject

__all__ = ["VirtualObject"]
