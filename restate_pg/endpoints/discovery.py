"""Discovery: ask an SDK endpoint what it serves (`GET {uri}/discover`), as Restate 1.7 asks.

Over HTTP/2 cleartext with prior knowledge by default, the only protocol TypeScript's
`endpoint().listen()` speaks; over HTTP/1.1 when asked (`use_http_11`, the CLI's
`--use-http1.1`). The request carries the manifest versions Restate accepts and the deployment's
additional headers; transient failures (connection refused, 5xx) are retried four times over about
a second and a half, as Restate's admin does. Each failure is a `DiscoveryError` worded as
Restate words it, with its error code (`META0003` unreachable or a bad status, `META0012`
unsupported protocol versions, `META0013` a bad response, `META0014` an HTTP/1.1-only server).
"""

from __future__ import annotations

import asyncio
import typing
from dataclasses import dataclass

import httpx
import orjson

from restate_pg.core.errors import RestatePgError
from restate_pg.endpoints.manifest import MalformedManifest, Manifest, parse_manifest
from restate_pg.endpoints.settings import signed_headers
from restate_pg.protocol.versions import (
    DISCOVERY_ACCEPT,
    MAX_MANIFEST_VERSION,
    MAX_VERSION,
    MIN_MANIFEST_VERSION,
    MIN_VERSION,
    manifest_content_type,
)

__all__ = [
    "ACCEPT",
    "MAX_PROTOCOL_VERSION",
    "MIN_PROTOCOL_VERSION",
    "Discovered",
    "DiscoveryError",
    "discover",
]

#: The service protocol versions restate-pg runs (an endpoint must support one of them).
MIN_PROTOCOL_VERSION = MIN_VERSION
MAX_PROTOCOL_VERSION = MAX_VERSION
#: The `accept` header of a discovery request, as Restate sends it, and its manifest versions by content type.
ACCEPT = DISCOVERY_ACCEPT
MANIFEST_CONTENT_TYPES = {manifest_content_type(v): v for v in range(MIN_MANIFEST_VERSION, MAX_MANIFEST_VERSION + 1)}
#: Restate's retry policy for discovery: exponential from 100 ms, factor 2, 4 retries.
_RETRY_DELAYS_S = (0.1, 0.2, 0.4, 0.8)
_RETRYABLE_STATUS = {408, 429, 500, 502, 503, 504}
_TIMEOUT = httpx.Timeout(30.0, connect=10.0)


class DiscoveryError(RestatePgError):
    """Discovery failed; `message` as Restate words it, `restate_code` its code (or None)."""

    def __init__(self, message: str, restate_code: typing.Optional[str] = None, retryable: bool = False) -> None:
        self.message = message
        self.restate_code = restate_code
        self.retryable = retryable
        super().__init__(self.decorated)

    @property
    def decorated(self) -> str:
        """The message with its code in front, as Restate's admin API answers it."""
        return self.message if self.restate_code is None else f"[{self.restate_code}] {self.message}"


@dataclass(frozen=True)
class Discovered:
    """What discovery found: the manifest, and how the endpoint is spoken to."""

    manifest: Manifest
    document: typing.Dict[str, typing.Any]  # the manifest's JSON, as received
    manifest_version: int
    http_version: str  # "HTTP/2.0" | "HTTP/1.1", as the endpoint answered
    min_protocol_version: int
    max_protocol_version: int
    sdk_version: typing.Optional[str]  # the endpoint's `x-restate-server` header

    @property
    def protocol_mode(self) -> str:
        """BIDI_STREAM or REQUEST_RESPONSE (discovery refuses a manifest without one)."""
        return typing.cast(str, self.manifest.protocol_mode)

    @property
    def protocol_type(self) -> str:
        """The protocol mode by the name Restate's admin API gives it."""
        return "BidiStream" if self.protocol_mode == "BIDI_STREAM" else "RequestResponse"

    @property
    def use_http_11(self) -> bool:
        return self.http_version == "HTTP/1.1"


def discover_url(uri: str) -> str:
    return uri.rstrip("/") + "/discover"


async def discover(uri: str, additional_headers: typing.Mapping[str, str] = {}, use_http_11: bool = False) -> Discovered:
    """Discover the endpoint at `uri` (absolute, http or https); DiscoveryError when it fails."""
    url = discover_url(uri)
    headers = {"accept": ACCEPT, **additional_headers, **signed_headers("/discover")}
    http2 = not use_http_11
    async with httpx.AsyncClient(http1=not http2 or url.startswith("https:"), http2=http2, timeout=_TIMEOUT) as client:
        for delay in (*_RETRY_DELAYS_S, None):
            try:
                response = await _get(client, url, headers, http2)
                break
            except DiscoveryError as exc:
                if not exc.retryable or delay is None:
                    raise
            await asyncio.sleep(delay)  # Restate's backoff between attempts, not a wait for anything
    return _read(response)


async def _get(client: httpx.AsyncClient, url: str, headers: typing.Mapping[str, str], http2: bool) -> httpx.Response:
    try:
        response = await client.get(url, headers=dict(headers))
    except httpx.ConnectError as exc:
        raise DiscoveryError(f"error when calling '{url}': unable to reach the remote endpoint.\nReason: {_reason(exc)}",
                             "META0003", retryable=True) from None
    except (httpx.RemoteProtocolError, httpx.LocalProtocolError) as exc:
        if http2:  # an HTTP/1.1 server answering the HTTP/2 preface: frames that make no sense
            raise DiscoveryError(f"error when calling '{url}': server possibly supports only HTTP1.1, consider "
                                 "discovery with --use-http1.1.", "META0014") from None
        raise DiscoveryError(f"error when calling '{url}': server possibly supports only HTTP/2, consider discovering "
                             f"without --use-http1.1.\nReason: {_reason(exc)}", "META0003") from None
    except httpx.HTTPError as exc:
        raise DiscoveryError(f"error when calling '{url}': {_reason(exc)}", "META0003", retryable=True) from None
    if response.status_code == 404:
        raise DiscoveryError("got status code '404'. Make sure the provided URI has the correct path where the Restate "
                             f"SDK endpoint is mounted. Response headers: {_headers(response)}. Body: {_body(response)}",
                             "META0003")
    if not response.is_success:
        raise DiscoveryError(f"got status code '{response.status_code} {response.reason_phrase}'. Response headers: "
                             f"{_headers(response)}. Body: {_body(response)}", "META0003",
                             retryable=response.status_code in _RETRYABLE_STATUS)
    return response


def _read(response: httpx.Response) -> Discovered:
    """The manifest of a successful response, checked as Restate checks it."""
    content_type = response.headers.get("content-type")
    if content_type is None:
        raise _bad_response(f"No content type header was specified. Expected one of '\"{ACCEPT}\"' content type.")
    version = MANIFEST_CONTENT_TYPES.get(content_type)
    if version is None:
        raise _bad_response(f"Bad content type header: \"{content_type}\". Expected one of '\"{ACCEPT}\"'")
    try:
        document = orjson.loads(response.content)
        manifest = parse_manifest(document)
    except (orjson.JSONDecodeError, MalformedManifest) as exc:
        reason = exc.message if isinstance(exc, MalformedManifest) else str(exc)
        raise DiscoveryError(f"received a bad response from the SDK that cannot be decoded: {reason}. "
                             f"Discovery response: {_body(response)}") from None
    if manifest.protocol_mode is None:
        raise _bad_response("missing protocol mode")
    low, high = manifest.min_protocol_version, manifest.max_protocol_version
    if low > high:
        raise _bad_response("Expected min protocol version to be <= max protocol version. Received min protocol "
                            f"version '{low}', max protocol version '{high}'")
    sdk_version = response.headers.get("x-restate-server")
    if sdk_version is not None and sdk_version.startswith(tuple(f"restate-sdk-typescript/1.{n}." for n in (0, 1, 2))):
        high = 1  # TypeScript SDK <= 1.2 announced a protocol version it did not speak (Restate corrects it too)
    if not (low <= MAX_PROTOCOL_VERSION and high >= MIN_PROTOCOL_VERSION):
        raise DiscoveryError(f"unsupported service protocol versions: [{low}, {high}]. Supported versions by this runtime "
                             f"are [{MIN_PROTOCOL_VERSION}, {MAX_PROTOCOL_VERSION}]. Please upgrade the SDK and try "
                             "registering again.", "META0012")
    return Discovered(
        manifest=manifest, document=document, manifest_version=version,
        http_version="HTTP/2.0" if response.http_version == "HTTP/2" else "HTTP/1.1",
        min_protocol_version=low, max_protocol_version=high, sdk_version=sdk_version,
    )


def _bad_response(detail: str) -> DiscoveryError:
    return DiscoveryError(f"received a bad response from the SDK: {detail}", "META0013")


def _reason(exc: Exception) -> str:
    return str(exc) or type(exc).__name__


def _headers(response: httpx.Response) -> str:
    return "{" + ", ".join(f'"{name}": "{value}"' for name, value in response.headers.items()) + "}"


def _body(response: httpx.Response) -> str:
    return response.content.decode("utf-8", errors="replace")
