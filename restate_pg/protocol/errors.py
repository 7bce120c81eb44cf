"""What goes wrong between restate-pg and an SDK endpoint, and the failure codes Restate uses for it.

The codes are those Restate records on an invocation whose endpoint misbehaved, so that Restate's
CLI and UI read restate-pg's failures as they read Restate's
(restatedev/restate crates/types/src/errors.rs `codes`, crates/invoker-impl/src/error.rs).
"""

from __future__ import annotations

from restate_pg.core.errors import RestatePgError

__all__ = [
    "AWAITING_TWO_ASYNC_RESULTS",
    "INTERNAL",
    "IncompatibleProtocol",
    "JOURNAL_MISMATCH",
    "PROTOCOL_VIOLATION",
    "ProtocolViolation",
    "UNSUPPORTED_FEATURE",
    "UNSUPPORTED_MEDIA_TYPE",
]

#: The handler took another path than its journal (non-determinism); sent by SDKs in ErrorMessage.
JOURNAL_MISMATCH = 570
#: A message that is not valid where it came: sent by SDKs, and recorded by restate-pg when the
#: endpoint breaks the protocol (ProtocolViolation).
PROTOCOL_VIOLATION = 571
#: SDK codes an endpoint may report in ErrorMessage.
AWAITING_TWO_ASYNC_RESULTS = 572
UNSUPPORTED_FEATURE = 573
#: What Restate's invoker records for every failure on its side of the stream: a response that
#: ended without End, Suspension or Error (an unexpected end of stream), an unexpected message or
#: content type, a connection error. Retried.
INTERNAL = 500
#: The endpoint answered 415 to the protocol version negotiated at discovery.
UNSUPPORTED_MEDIA_TYPE = 415


class ProtocolViolation(Exception):
    """The endpoint sent something the protocol does not allow: an unknown message type, a
    payload that does not decode, a frame over the size limit. The attempt fails with
    PROTOCOL_VIOLATION and is retried."""

    code = PROTOCOL_VIOLATION


class IncompatibleProtocol(RestatePgError):
    """The endpoint speaks no protocol version (or manifest version) restate-pg speaks: the user
    must upgrade the SDK and register the deployment again."""
