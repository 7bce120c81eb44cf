"""The identifiers of the service protocol: SDK awakeable ids and signed request identities.

Awakeable ids must be the ones SDKs make themselves from StartMessage.id, byte for byte, or a
completion would reach no invocation; request identities must pass the SDK's check, which is
reproduced here from restate-sdk-shared-core's src/request_identity.rs (EdDSA JWT, required
aud/exp/iat/nbf, zero leeway, `publickeyv1_` + base58 raw key) with cryptography alone.
"""

from __future__ import annotations

import base64
import json
import time
import typing

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from restate_pg.core.ids import new_awakeable_id, new_invocation_id
from restate_pg.protocol.awakeables import parse_sdk_awakeable_id, sdk_awakeable_id
from restate_pg.protocol.identity import RequestSigner, base58

pytestmark = pytest.mark.memory

# ---- Awakeable ids ----------------------------------------------------------------------------


def test_an_awakeable_id_worked_out_by_hand() -> None:
    # StartMessage.id 00 01 02, signal index 17 = 00 00 00 11. Base64url of 00 01 02 | 00 00 00 | 11:
    # 000000 000000 000100 000010 -> "AAEC"; 000000 x4 -> "AAAA"; 000100 01(0000) -> "EQ", no padding.
    assert sdk_awakeable_id(b"\x00\x01\x02", 17) == "sign_1AAECAAAAEQ"
    assert parse_sdk_awakeable_id("sign_1AAECAAAAEQ") == (b"\x00\x01\x02", 17)


def test_an_invocations_awakeable_ids_lead_back_to_it() -> None:
    invocation_id = new_invocation_id()
    start_id = invocation_id.encode("ascii")  # what restate-pg sends as StartMessage.id
    for index in (17, 18, 0xFFFF_FFFF):
        awakeable_id = sdk_awakeable_id(start_id, index)
        # 38 + 4 bytes are 56 base64 characters exactly: never padded, URL-safe.
        assert len(awakeable_id) == len("sign_1") + 56 and not set(awakeable_id) & set("=+/")
        assert parse_sdk_awakeable_id(awakeable_id) == (start_id, index)


def test_the_specifications_example_parses() -> None:
    """sdk-shared-core's docs/service-invocation-protocol.md shows `prom_1NMyOAvDK2CcBjUH4Rmb7eGBp0DNNDnmsAAAAAQ`:
    its last six characters, AAAAAQ, are the index 1; the same body under `sign_1` names the same awakeable."""
    start_id, index = parse_sdk_awakeable_id("prom_1NMyOAvDK2CcBjUH4Rmb7eGBp0DNNDnmsAAAAAQ")
    assert (len(start_id), index) == (24, 1)
    assert sdk_awakeable_id(start_id, index) == "sign_1NMyOAvDK2CcBjUH4Rmb7eGBp0DNNDnmsAAAAAQ"
    assert parse_sdk_awakeable_id("sign_1NMyOAvDK2CcBjUH4Rmb7eGBp0DNNDnmsAAAAAQ==") == (start_id, 1)


@pytest.mark.parametrize("bad", ["", "sign_1", "sign_1AAAA", "awk_1AAECAAAAEQ", "sign_1AAEC+AAAEQ", "sign_1AAECAAAAE",
                                 "sign_1AAEC AAAAEQ"])
def test_malformed_awakeable_ids_are_value_errors(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_sdk_awakeable_id(bad)


def test_signal_indexes_are_u32() -> None:
    with pytest.raises(ValueError):
        sdk_awakeable_id(b"x", 1 << 32)
    with pytest.raises(ValueError):
        sdk_awakeable_id(b"x", -1)


def test_in_process_awakeable_ids_are_told_apart_by_length() -> None:
    """Both kinds start with sign_1; an in-process id carries 16 more bytes (a secret), so the start
    id an SDK reading of it yields is no invocation id."""
    invocation_id = new_invocation_id()
    start_id, _ = parse_sdk_awakeable_id(new_awakeable_id(invocation_id, 3))
    assert len(start_id) == 38 + 4 + 12 and start_id[:38] == invocation_id.encode()


# ---- Request identity -------------------------------------------------------------------------

#: Restate's own test key and the public key string Restate derives from it
#: (crates/service-client/src/request_identity/v1.rs, `read_key`).
RESTATE_TEST_KEY = b"""-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIPe++4ZTPQDF81otpoU/mOGHC2vOAVp9WbiCblvn3nXO
-----END PRIVATE KEY-----"""
RESTATE_TEST_KID = "publickeyv1_AfQwmwfgEZhrWpvv8N52SHpRtZqGGaFr4AZN6qtYWSiY"

_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def b58decode(text: str) -> bytes:
    """What the SDK does with the configured key (bs58 decode), written apart from ours."""
    n = 0
    for char in text:
        n = n * 58 + _B58.index(char)
    body = n.to_bytes((n.bit_length() + 7) // 8, "big") if n else b""
    return b"\x00" * (len(text) - len(text.lstrip("1"))) + body


def b64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def verify_as_an_sdk(headers: typing.Mapping[str, str], identity_key: str, path: str) -> typing.Dict[str, typing.Any]:
    """The SDK's check of a request (request_identity.rs `verify_identity`), returning the claims."""
    assert headers["x-restate-signature-scheme"] == "v1"
    header_b64, claims_b64, signature_b64 = headers["x-restate-jwt-v1"].split(".")
    assert identity_key.startswith("publickeyv1_")
    raw_key = b58decode(identity_key[len("publickeyv1_"):])
    assert len(raw_key) == 32
    Ed25519PublicKey.from_public_bytes(raw_key).verify(b64url(signature_b64), f"{header_b64}.{claims_b64}".encode())
    header = json.loads(b64url(header_b64))
    assert header["alg"] == "EdDSA" and header["typ"] == "JWT" and header["kid"] == identity_key
    claims = json.loads(b64url(claims_b64))
    now = time.time()
    assert {"aud", "exp", "iat", "nbf"} <= set(claims)
    assert claims["aud"] == path
    assert claims["nbf"] <= now < claims["exp"]  # no leeway
    return claims


def test_restates_test_key_gives_restates_public_key_string() -> None:
    assert RequestSigner.from_pem(RESTATE_TEST_KEY).public_key_string() == RESTATE_TEST_KID


def test_signed_headers_pass_the_sdks_check() -> None:
    signer = RequestSigner.from_pem(RESTATE_TEST_KEY)
    before = int(time.time())
    claims = verify_as_an_sdk(signer.headers("/invoke/Greeter/greet"), RESTATE_TEST_KID, "/invoke/Greeter/greet")
    after = int(time.time())
    assert before <= claims["iat"] <= after
    assert claims["exp"] - claims["iat"] == 60 and claims["iat"] - claims["nbf"] == 60  # Restate's default
    assert "sub" not in claims
    keyed = verify_as_an_sdk(signer.headers("/invoke/Counter/add", sub="alice"), RESTATE_TEST_KID, "/invoke/Counter/add")
    assert keyed["sub"] == "alice"


def test_a_signature_does_not_verify_for_another_key_or_path() -> None:
    signer, other = RequestSigner.generate(), RequestSigner.generate()
    headers = signer.headers("/discover")
    verify_as_an_sdk(headers, signer.public_key_string(), "/discover")
    with pytest.raises(InvalidSignature):
        verify_as_an_sdk({**headers, "x-restate-jwt-v1": headers["x-restate-jwt-v1"].replace(
            signer.public_key_string(), other.public_key_string())}, other.public_key_string(), "/discover")
    with pytest.raises(AssertionError):
        verify_as_an_sdk(headers, signer.public_key_string(), "/invoke/Greeter/greet")


def test_a_generated_key_survives_its_pem_and_a_custom_expiration_holds() -> None:
    signer = RequestSigner.generate(expiration=300)
    again = RequestSigner.from_pem(signer.private_pem())
    assert again.public_key_string() == signer.public_key_string()
    claims = verify_as_an_sdk(signer.headers("/discover"), signer.public_key_string(), "/discover")
    assert claims["exp"] - claims["iat"] == 300


def test_only_unencrypted_ed25519_pem_keys_are_accepted() -> None:
    ec_pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    with pytest.raises(ValueError, match="Ed25519"):
        RequestSigner.from_pem(ec_pem)
    with pytest.raises(ValueError, match="PEM"):
        RequestSigner.from_pem(b"not a key")
    with pytest.raises(ValueError):
        RequestSigner.generate(expiration=0)


def test_base58_is_bitcoins() -> None:
    assert base58(b"Hello World!") == "2NEpo7TZRRrLZSi2U"
    assert base58(b"\x00\x00\x01") == "112"
    assert base58(b"") == ""
    raw = bytes(range(32))
    assert b58decode(base58(raw)) == raw
