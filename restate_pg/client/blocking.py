"""`SyncRestateClient`: the same client for code that does not run an event loop.

It drives an asynchronous client on a private event loop in a daemon thread, so that both
transports exist once; a blocked call holds the calling thread only. One instance may be shared
by threads.
"""

from __future__ import annotations

import asyncio
import functools
import threading
import typing

from restate_pg.client.base import RestateClient
from restate_pg.client.scoped import RestateScopedClient

T = typing.TypeVar("T")


def _blocking(method: typing.Callable[..., typing.Awaitable[T]]) -> typing.Callable[..., T]:
    @functools.wraps(method)
    def run(self: "typing.Union[SyncRestateClient, SyncScopedClient]", *args: typing.Any, **kwargs: typing.Any) -> T:
        return self._run(getattr(self._client, method.__name__)(*args, **kwargs))

    return run


class SyncRestateClient:
    """The blocking face of a `RestateClient`; use as a context manager, or `close()` it."""

    def __init__(self, client: RestateClient) -> None:
        self._client = client
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="restate-pg-client", daemon=True)
        self._thread.start()

    def _run(self, coro: typing.Awaitable[T]) -> T:
        if self._loop.is_closed():
            raise RuntimeError("the client is closed")
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()  # type: ignore[arg-type]

    service_call = _blocking(RestateClient.service_call)
    object_call = _blocking(RestateClient.object_call)
    workflow_call = _blocking(RestateClient.workflow_call)
    service_send = _blocking(RestateClient.service_send)
    object_send = _blocking(RestateClient.object_send)
    workflow_send = _blocking(RestateClient.workflow_send)
    generic_call = _blocking(RestateClient.generic_call)
    generic_send = _blocking(RestateClient.generic_send)
    attach_invocation = _blocking(RestateClient.attach_invocation)
    get_output = _blocking(RestateClient.get_output)
    resolve_awakeable = _blocking(RestateClient.resolve_awakeable)
    reject_awakeable = _blocking(RestateClient.reject_awakeable)
    cancel_invocation = _blocking(RestateClient.cancel_invocation)
    open = _blocking(RestateClient.open)

    def scope(self, scope: str) -> "SyncScopedClient":
        """Calls and sends in `scope`, blocking (`RestateClient.scope`); an invalid scope is a ValueError."""
        return SyncScopedClient(self, self._client.scope(scope))

    def close(self) -> None:
        if self._loop.is_closed():
            return
        try:
            self._run(self._client.close())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join()
            self._loop.close()

    def __enter__(self) -> "SyncRestateClient":
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class SyncScopedClient:
    """The blocking face of a `RestateScopedClient`, on its parent's event loop."""

    def __init__(self, parent: SyncRestateClient, client: RestateScopedClient) -> None:
        self._parent = parent
        self._client = client

    def _run(self, coro: typing.Awaitable[T]) -> T:
        return self._parent._run(coro)

    service_call = _blocking(RestateScopedClient.service_call)
    object_call = _blocking(RestateScopedClient.object_call)
    workflow_call = _blocking(RestateScopedClient.workflow_call)
    service_send = _blocking(RestateScopedClient.service_send)
    object_send = _blocking(RestateScopedClient.object_send)
    workflow_send = _blocking(RestateScopedClient.workflow_send)
