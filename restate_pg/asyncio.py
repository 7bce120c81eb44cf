"""restate-sdk's `restate.asyncio`: combinators over durable futures, deterministic on replay."""

from restate_pg.runtime.combinators import as_completed, gather, select, wait_completed

__all__ = ["as_completed", "gather", "select", "wait_completed"]
