"""restate-sdk's `restate.service`."""

from restate_pg.api.definitions import Service

__all__ = ["Service"]
