"""Process-wide settings of how restate-pg reaches SDK endpoints, from the environment (they
concern the server as a whole, as Restate's server configuration does, not one deployment):

- `RESTATE_PG_PROTOCOL_VERSION_MAX`: the highest service protocol version negotiated (5 to 7,
  default 7); an endpoint speaks the highest version both sides accept, at most this.
- `RESTATE_PG_REQUEST_IDENTITY_KEY`: the path of an Ed25519 private key (PEM). When set, every
  request to an endpoint (discovery and invocations) is signed, so that endpoints started with
  the matching public key (`restate-pg keys public`, `publickeyv1_...`) accept only restate-pg.
"""

from __future__ import annotations

import functools
import os
import typing
from pathlib import Path

from restate_pg.core.errors import RestatePgError
from restate_pg.protocol.versions import MAX_VERSION, MIN_VERSION

if typing.TYPE_CHECKING:
    from restate_pg.protocol.identity import RequestSigner

PROTOCOL_VERSION_MAX_ENV = "RESTATE_PG_PROTOCOL_VERSION_MAX"
IDENTITY_KEY_ENV = "RESTATE_PG_REQUEST_IDENTITY_KEY"


class EndpointSettingError(RestatePgError):
    """A setting of the environment that restate-pg cannot use."""


def protocol_version_max() -> int:
    raw = os.environ.get(PROTOCOL_VERSION_MAX_ENV, "").strip()
    if not raw:
        return MAX_VERSION
    if not raw.isdigit() or not MIN_VERSION <= int(raw) <= MAX_VERSION:
        raise EndpointSettingError(
            f"{PROTOCOL_VERSION_MAX_ENV}={raw!r}: expected a service protocol version from {MIN_VERSION} to {MAX_VERSION}")
    return int(raw)


def request_signer() -> typing.Optional["RequestSigner"]:
    """The signer of requests to endpoints, or None when no key is configured."""
    path = os.environ.get(IDENTITY_KEY_ENV, "").strip()
    return _signer(path) if path else None


@functools.lru_cache(maxsize=4)
def _signer(path: str) -> "RequestSigner":
    try:
        from restate_pg.protocol.identity import RequestSigner
    except ImportError:  # cryptography is an optional extra
        raise EndpointSettingError(
            f"{IDENTITY_KEY_ENV} is set, but request signing needs the 'identity' extra: "
            "pip install 'restate-pg[identity]'") from None
    try:
        return RequestSigner.from_pem(Path(path).read_bytes())
    except OSError as exc:
        raise EndpointSettingError(f"{IDENTITY_KEY_ENV}: cannot read {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise EndpointSettingError(f"{IDENTITY_KEY_ENV}: {path} is not an Ed25519 private key in PEM: {exc}") from None


def signed_headers(path: str, key: typing.Optional[str] = None) -> typing.Dict[str, str]:
    """The request identity headers for a request to `path` of an endpoint (none without a key)."""
    signer = request_signer()
    return {} if signer is None else signer.headers(path, key)
