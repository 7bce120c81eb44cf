"""What an endpoint attempt needs from the process it runs in (implemented by the worker)."""

from __future__ import annotations

import typing

import httpx

from restate_pg.core.records import Batch, FlushResult, Lease
from restate_pg.endpoints.h2c import H2Client
from restate_pg.endpoints.targets import Targets
from restate_pg.runtime.clock import DbClock
from restate_pg.runtime.port import JournalStore


class EndpointHost(typing.Protocol):
    targets: Targets
    #: Seconds a bidirectional exchange waits with nothing to send before the endpoint suspends.
    default_inactivity_timeout: float
    #: The transport errors of the HTTP client (to tell "endpoint unreachable" from bugs).
    transport_errors: typing.Tuple[typing.Type[BaseException], ...]

    @property
    def store(self) -> JournalStore: ...

    @property
    def clock(self) -> DbClock: ...

    def http_client(self, http1: bool) -> httpx.AsyncClient:
        """The process's client for endpoints: HTTP/2 cleartext with prior knowledge, or HTTP/1.1."""

    def h2_client(self) -> H2Client:
        """The process's full-duplex HTTP/2 cleartext client (bidirectional exchanges)."""

    def sign(self, path: str, key: typing.Optional[str] = None) -> typing.Dict[str, str]:
        """Request identity headers for `path` (none unless a signing key is configured)."""

    def after_flush(self, batch: Batch, result: FlushResult, lease: Lease) -> None: ...

    def attempt_waiting(self, waiting: bool) -> bool:
        """The attempt starts (True) or stops (False) waiting for the server (a timer, a result):
        it gives its slot back meanwhile, as an in-process attempt waiting in memory does. Starting
        returns False, and counts nothing, when the process keeps too many waiters already."""
