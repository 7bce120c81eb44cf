"""restate-sdk's `restate.logging`: loggers that stay quiet while a handler replays."""

from restate_pg.observability.logs import RestateLoggingFilter, getLogger

__all__ = ["RestateLoggingFilter", "getLogger"]
