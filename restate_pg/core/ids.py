"""Invocation ids in Restate's format: `inv_1` + base62(partition key, 11) + base62(uuid, 22).

Random ids are time-ordered (a millisecond timestamp leads the uuid part), which keeps the
primary-key index of `invocation` append-mostly. Ids derived from an idempotency key or a workflow
id are deterministic, so that a duplicate submission collides on the primary key.
"""

from __future__ import annotations

import base64
import hashlib
import os
import time
import typing

#: Restate's base62 alphabet (digits, lower case, upper case): its tools decode ids with it, and
#: refuse one whose value overflows its integer, as most do when read with another alphabet.
_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


def _base62(n: int, width: int) -> str:
    chars = []
    for _ in range(width):
        n, r = divmod(n, 62)
        chars.append(_ALPHABET[r])
    return "".join(reversed(chars))


def _partition_key(key: typing.Optional[str]) -> int:
    if key is None:
        return int.from_bytes(os.urandom(8), "big")
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big")


def new_invocation_id(key: typing.Optional[str] = None) -> str:
    """A fresh, time-ordered invocation id."""
    uuid = (int(time.time() * 1000) << 80) | int.from_bytes(os.urandom(10), "big")
    return "inv_1" + _base62(_partition_key(key), 11) + _base62(uuid, 22)


def deterministic_invocation_id(*parts: typing.Optional[str], key: typing.Optional[str] = None) -> str:
    """The id of an invocation identified by `parts` (an idempotency key, a workflow id)."""
    digest = hashlib.sha256("\x00".join("" if p is None else p for p in parts).encode()).digest()
    partition = _partition_key(key) if key is not None else int.from_bytes(digest[16:24], "big")
    return "inv_1" + _base62(partition, 11) + _base62(int.from_bytes(digest[:16], "big"), 22)


def workflow_invocation_id(workflow: str, workflow_id: typing.Optional[str], scope: typing.Optional[str] = None) -> str:
    """The id of a workflow's run: one per workflow id (and scope: as in Restate, a scope
    partitions identity; unscoped ids are those of earlier releases)."""
    if scope is not None:
        return deterministic_invocation_id("wf", "scope:" + scope, workflow, workflow_id, key=workflow_id)
    return deterministic_invocation_id("wf", workflow, workflow_id, key=workflow_id)


def idempotent_invocation_id(service: str, key: typing.Optional[str], handler: str, idempotency_key: str,
                             scope: typing.Optional[str] = None) -> str:
    """The id of a request with an idempotency key: one per (scope, service, key, handler,
    idempotency key): the same key in two scopes is two invocations."""
    if scope is not None:
        return deterministic_invocation_id("scope:" + scope, service, key, handler, idempotency_key, key=key)
    return deterministic_invocation_id(service, key, handler, idempotency_key, key=key)


def is_invocation_id(value: str) -> bool:
    return len(value) == 38 and value.startswith("inv_1") and all(c in _ALPHABET for c in value[5:])


def deployment_id_from_digest(digest: bytes) -> str:
    """A deployment id in Restate's format, `dp_1` + base62(u128, 22), from a hash: Restate's CLI
    refuses to read a deployment id of any other shape."""
    return "dp_1" + _base62(int.from_bytes(digest[:16], "big"), 22)


def new_deployment_id() -> str:
    """A fresh random deployment id, as Restate gives a registered SDK endpoint."""
    return deployment_id_from_digest(os.urandom(16))


def is_deployment_id(value: str) -> bool:
    return len(value) == 26 and value.startswith("dp_1") and all(c in _ALPHABET for c in value[4:])


_AWAKEABLE_PREFIX = "sign_1"
_AWAKEABLE_SECRET_BYTES = 16


def new_awakeable_id(invocation_id: str, command_index: int) -> str:
    """An awakeable's id: where to deliver its result, and a random secret that makes it
    unguessable even when the invocation's id is not (ids derived from idempotency keys)."""
    raw = invocation_id.encode("ascii") + command_index.to_bytes(4, "big") + os.urandom(_AWAKEABLE_SECRET_BYTES)
    return _AWAKEABLE_PREFIX + base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def parse_awakeable_id(awakeable_id: str) -> typing.Tuple[str, int]:
    """The invocation and command an awakeable id points to; ValueError if it is malformed."""
    if not awakeable_id.startswith(_AWAKEABLE_PREFIX):
        raise ValueError(awakeable_id)
    body = awakeable_id[len(_AWAKEABLE_PREFIX):]
    try:
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except (ValueError, TypeError):
        raise ValueError(awakeable_id) from None
    if len(raw) != 38 + 4 + _AWAKEABLE_SECRET_BYTES:
        raise ValueError(awakeable_id)
    invocation_id = raw[:38].decode("ascii", errors="replace")
    if not is_invocation_id(invocation_id):
        raise ValueError(awakeable_id)
    return invocation_id, int.from_bytes(raw[38:42], "big")
