"""The one way an integration says that its library is missing."""

from __future__ import annotations

import typing


def missing(module: str, library: str, extra: str) -> typing.NoReturn:
    """Raise the ImportError of `restate_pg.ext.<module>` when `library` is not installed."""
    raise ImportError(
        f"restate_pg.ext.{module} integrates {library}, which is not installed: "
        f"pip install 'restate-pg[{extra}]' (or {library} itself)"
    )


def context() -> typing.Any:
    """The running handler's context, for what an integration journals (a RuntimeError outside a handler)."""
    from restate_pg.runtime.current import current_context

    ctx = current_context()
    if ctx is None:
        raise RuntimeError("No Restate context found.")
    return ctx
