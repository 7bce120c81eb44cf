"""Which protocol an endpoint and restate-pg speak together, and the content types that say so.

Two version numbers meet at an endpoint. The *manifest* version is the JSON form of the endpoint's
answer to `GET /discover`: restate-pg asks for every form Restate 1.7 reads (v1 to v4) and learns
the one chosen from the response's content type. The *service protocol* version is the framing
of invocations: the manifest states the endpoint's range, restate-pg picks the highest version
both speak when it registers the deployment, and every invocation keeps the version it started
with. Versions 5 to 7 are those of restate-sdk-shared-core (every SDK but Java's older core,
which stops at 6) and of Restate 1.7 (crates/types/src/service_protocol.rs).
"""

from __future__ import annotations

import typing

from restate_pg.protocol.errors import IncompatibleProtocol

__all__ = [
    "DISCOVERY_ACCEPT",
    "MAX_MANIFEST_VERSION",
    "MAX_VERSION",
    "MIN_MANIFEST_VERSION",
    "MIN_VERSION",
    "invocation_content_type",
    "manifest_content_type",
    "manifest_version",
    "negotiate",
]

MIN_VERSION = 5
MAX_VERSION = 7

MIN_MANIFEST_VERSION = 1
MAX_MANIFEST_VERSION = 4


def invocation_content_type(version: int) -> str:
    """The `content-type` (and `accept`) of an invocation request in protocol `version`; the
    endpoint answers with the same one, or 415 if it does not speak that version."""
    return f"application/vnd.restate.invocation.v{version}"


def manifest_content_type(version: int) -> str:
    return f"application/vnd.restate.endpointmanifest.v{version}+json"


#: The `accept` header of `GET /discover`, exactly as Restate 1.7 sends it (oldest first).
DISCOVERY_ACCEPT = ", ".join(
    manifest_content_type(v) for v in range(MIN_MANIFEST_VERSION, MAX_MANIFEST_VERSION + 1))

_MANIFEST_VERSIONS = {manifest_content_type(v): v for v in range(MIN_MANIFEST_VERSION, MAX_MANIFEST_VERSION + 1)}


def manifest_version(content_type: typing.Optional[str]) -> int:
    """The manifest version of a discovery response, from its `content-type`.

    Raises IncompatibleProtocol, in Restate's words, for a missing or unknown content type (an
    endpoint that is no Restate SDK, or one too new for restate-pg).
    """
    if content_type is None:
        raise IncompatibleProtocol(
            f"No content type header was specified. Expected one of '{DISCOVERY_ACCEPT}' content type.")
    version = _MANIFEST_VERSIONS.get(content_type.strip())
    if version is None:
        raise IncompatibleProtocol(f"Bad content type header: '{content_type}'. Expected one of '{DISCOVERY_ACCEPT}'")
    return version


def negotiate(endpoint_min: int, endpoint_max: int, server_max: int = MAX_VERSION) -> int:
    """The highest service protocol version that the endpoint (its manifest's
    minProtocolVersion..maxProtocolVersion) and restate-pg (MIN_VERSION..server_max) share.

    `server_max` below MAX_VERSION pins restate-pg lower (Restate 1.7 stops at 6 unless V7 is
    enabled). Raises IncompatibleProtocol, with the message Restate gives at registration, when
    the ranges do not meet.
    """
    if not MIN_VERSION <= server_max <= MAX_VERSION:
        raise ValueError(f"server_max must be within {MIN_VERSION}..{MAX_VERSION}, not {server_max}")
    chosen = min(endpoint_max, server_max)
    if chosen < max(endpoint_min, MIN_VERSION):
        raise IncompatibleProtocol(
            f"unsupported service protocol versions: [{endpoint_min}, {endpoint_max}]. Supported versions by this "
            f"runtime are [{MIN_VERSION}, {server_max}]. Please upgrade the SDK and try registering again.")
    return chosen
