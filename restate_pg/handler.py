"""restate-sdk's `restate.handler`: the declared handler (`Handler`) and its service's tag.

restate-sdk's other names here (`TypeHint`, `HandlerIO`, `make_handler`...) build the
discovery manifest its endpoint serves Restate's server; restate-pg has no such hop."""

from restate_pg.api.definitions import Handler, handler_of

__all__ = ["Handler", "handler_of"]
