"""Request identity: restate-pg signs its requests to SDK endpoints, as Restate does.

An SDK started with a public key (`identityKeys: ["publickeyv1_..."]`) refuses every request that
does not carry `x-restate-signature-scheme: v1` and, in `x-restate-jwt-v1`, an Ed25519-signed
(EdDSA) JWT whose `aud` is the request's path and whose `iat`, `nbf` and `exp` hold, checked with
no leeway (restate-sdk-shared-core src/request_identity.rs). Like Restate
(crates/service-client/src/request_identity/v1.rs), restate-pg puts the key's public form in the
header's `kid`, opens the token's validity `expiration` seconds before now and closes it as long
after, to absorb clock skew, and names the object or workflow key in `sub` when there is one.

The signing key is an Ed25519 private key in PKCS#8 PEM, the format Restate's
`request-identity-private-key-pem-file` takes (`openssl genpkey -algorithm ed25519`). Needs the
`identity` extra (cryptography).
"""

from __future__ import annotations

import base64
import json
import time
import typing

try:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
except ImportError as e:  # pragma: no cover - depends on the installed extras
    raise ImportError("request identity needs cryptography: pip install 'restate-pg[identity]'") from e

__all__ = ["JWT_HEADER", "PUBLIC_KEY_PREFIX", "SCHEME_HEADER", "RequestSigner", "base58"]

SCHEME_HEADER = "x-restate-signature-scheme"
JWT_HEADER = "x-restate-jwt-v1"
PUBLIC_KEY_PREFIX = "publickeyv1_"
#: Restate's default `request-identity-expiration`, in seconds.
DEFAULT_EXPIRATION = 60

_BASE58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def base58(data: bytes) -> str:
    """Bitcoin's base58, the encoding of the public key in `publickeyv1_` keys (bs58's default)."""
    n = int.from_bytes(data, "big")
    digits = []
    while n:
        n, r = divmod(n, 58)
        digits.append(_BASE58[r])
    leading_zeros = len(data) - len(data.lstrip(b"\x00"))
    return "1" * leading_zeros + "".join(reversed(digits))


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _json(value: typing.Mapping[str, typing.Any]) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


class RequestSigner:
    """Signs requests to SDK endpoints with one Ed25519 key."""

    def __init__(self, private_key: Ed25519PrivateKey, expiration: int = DEFAULT_EXPIRATION) -> None:
        if expiration < 1:
            raise ValueError("the expiration must be at least one second")
        self._key = private_key
        self.expiration = expiration
        self._header = _b64url(_json({"typ": "JWT", "alg": "EdDSA", "kid": self.public_key_string()}))

    @classmethod
    def from_pem(cls, pem: bytes, expiration: int = DEFAULT_EXPIRATION) -> RequestSigner:
        """The signer of a PKCS#8 PEM Ed25519 private key; ValueError for anything else."""
        try:
            key = serialization.load_pem_private_key(pem, password=None)
        except (ValueError, TypeError) as e:
            raise ValueError(f"not an unencrypted PEM private key: {e}") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError(f"request identity keys are Ed25519, not {type(key).__name__}")
        return cls(key, expiration)

    @classmethod
    def generate(cls, expiration: int = DEFAULT_EXPIRATION) -> RequestSigner:
        """A signer with a new random key."""
        return cls(Ed25519PrivateKey.generate(), expiration)

    def private_pem(self) -> bytes:
        """The key in the PEM form `from_pem` reads, to keep a generated key."""
        return self._key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())

    def public_key_string(self) -> str:
        """`publickeyv1_` + base58(raw 32-byte public key): what SDKs are configured with."""
        raw = self._key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return PUBLIC_KEY_PREFIX + base58(raw)

    def headers(self, path: str, sub: typing.Optional[str] = None) -> typing.Dict[str, str]:
        """The headers that sign a request to `path`, relative to the deployment's URL
        (`/discover`, `/invoke/{service}/{handler}`); `sub`, the object or workflow key."""
        now = int(time.time())
        claims: typing.Dict[str, typing.Any] = {
            "aud": path, "exp": now + self.expiration, "iat": now, "nbf": max(now - self.expiration, 0)}
        if sub is not None:
            claims["sub"] = sub
        signing_input = f"{self._header}.{_b64url(_json(claims))}"
        signature = self._key.sign(signing_input.encode("ascii"))
        return {SCHEME_HEADER: "v1", JWT_HEADER: f"{signing_input}.{_b64url(signature)}"}
