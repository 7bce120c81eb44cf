"""restate-sdk's `restate.workflow`."""

from restate_pg.api.definitions import Workflow

__all__ = ["Workflow"]
