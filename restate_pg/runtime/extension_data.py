"""Extension data: what libraries built on the SDK keep for one attempt (restate-sdk's
`set_extension_data` / `get_extension_data`; the agent integrations' turnstiles, tracing's spans).

A value with a `__close__` method (sync or async) is closed when the handler returns or raises,
so that what it holds (an open span, say) never outlives the attempt.
"""

from __future__ import annotations

import inspect
import typing

from restate_pg.observability import logs

logger = logs.internal_logger("restate_pg.runtime")


def _data(ctx: typing.Any) -> typing.Dict[str, typing.Any]:
    data = getattr(ctx, "extension_data", None)
    if data is None:
        raise TypeError(f"{ctx!r} is not a restate-pg handler context")
    return typing.cast(typing.Dict[str, typing.Any], data)


def set_extension_data(ctx: typing.Any, key: str, value: typing.Any) -> None:
    _data(ctx)[key] = value


def get_extension_data(ctx: typing.Any, key: str) -> typing.Any:
    return _data(ctx).get(key)


def clear_extension_data(ctx: typing.Any, key: str) -> None:
    _data(ctx).pop(key, None)


async def close_extension_data(data: typing.Dict[str, typing.Any]) -> None:
    """Close every value that can be closed; a failing close is logged, never raised: it must
    not change the attempt's outcome."""
    for key, value in list(data.items()):
        close = getattr(value, "__close__", None)
        if not callable(close):
            continue
        try:
            done = close()
            if inspect.isawaitable(done):
                await done
        except Exception:
            logger.warning("closing the extension data %r failed", key, exc_info=True)
    data.clear()
