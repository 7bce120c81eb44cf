"""restate-sdk's `restate.context_managers`: `contextvar`, which makes the value an async context
manager yields readable as `.value` while it is entered, for frameworks whose hooks (such as a
handler's `invocation_context_managers`) only enter context managers that yield None."""

from __future__ import annotations

import contextlib
import contextvars
import typing

P = typing.ParamSpec("P")
T = typing.TypeVar("T")

__all__ = ["contextvar"]


class contextvar(typing.Generic[P, T]):  # noqa: N801 - restate-sdk's name
    """Wrap an async context manager factory: calling the wrapper enters it and keeps what it
    yields in a ContextVar, read with `.value` inside the block."""

    def __init__(self, func: typing.Callable[P, typing.AsyncContextManager[T]]) -> None:
        self.func = func
        self._value_var: contextvars.ContextVar[typing.Optional[T]] = contextvars.ContextVar("value", default=None)

    @property
    def value(self) -> T:
        """What the wrapped context manager yielded; LookupError outside its block."""
        value = self._value_var.get()
        if value is None:
            raise LookupError("the context manager's value is read outside its block (it was not entered)")
        return value

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> typing.AsyncContextManager[None]:
        @contextlib.asynccontextmanager
        async def entered() -> typing.AsyncIterator[None]:
            async with self.func(*args, **kwargs) as value:
                token = self._value_var.set(value)
                try:
                    yield
                finally:
                    self._value_var.reset(token)

        return entered()
