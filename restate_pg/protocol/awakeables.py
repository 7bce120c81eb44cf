"""Awakeable ids as SDK endpoints make them: `sign_1` + base64url(StartMessage.id ++ u32 index).

An SDK creates an awakeable by taking the next signal index of its invocation (17 and up) and
derives the id from the StartMessage's id without asking the server
(restate-sdk-shared-core src/vm/mod.rs `awakeable_id_str`: URL-safe alphabet, no padding).
Completing one delivers a SignalNotification with that index to the invocation whose
StartMessage.id it names; restate-pg sends the invocation id's ASCII bytes there, so the id leads
back to the invocation without a lookup table.

These differ from the ids of in-process awakeables (`core.ids.new_awakeable_id`), which carry a
journal position and a random secret; both start with `sign_1` and are told apart by length.
The prose specification (sdk-shared-core docs/service-invocation-protocol.md) still names the
prefix `prom_1` with the same body; shared-core's code neither makes nor reads that form, but
`parse_sdk_awakeable_id` accepts it, since an SDK written from the specification would make it.
"""

from __future__ import annotations

import base64
import binascii
import string
import typing

from restate_pg.core.ids import is_invocation_id
from restate_pg.core.records import Failure, Signal

__all__ = ["awakeable_signal", "sdk_awakeable_id", "parse_sdk_awakeable_id"]

PREFIX = "sign_1"
SPEC_PREFIX = "prom_1"
_INDEX_BYTES = 4
_BASE64URL = frozenset(string.ascii_letters + string.digits + "-_")


def sdk_awakeable_id(start_id: bytes, signal_index: int) -> str:
    """The id an SDK gives the awakeable of `signal_index` in the invocation started with `start_id`."""
    if not 0 <= signal_index <= 0xFFFF_FFFF:
        raise ValueError(f"signal index {signal_index} is not a u32")
    raw = start_id + signal_index.to_bytes(_INDEX_BYTES, "big")
    return PREFIX + base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def parse_sdk_awakeable_id(awakeable_id: str) -> typing.Tuple[bytes, int]:
    """The StartMessage.id and signal index an SDK awakeable id names; ValueError if it names none."""
    for prefix in (PREFIX, SPEC_PREFIX):
        if awakeable_id.startswith(prefix):
            body = awakeable_id[len(prefix):]
            break
    else:
        raise ValueError(f"not an awakeable id (it starts with neither {PREFIX} nor {SPEC_PREFIX}): {awakeable_id!r}")
    body = body.rstrip("=")  # a padded id names the same awakeable
    try:
        if not set(body) <= _BASE64URL:
            raise ValueError(body)
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except (binascii.Error, ValueError):
        raise ValueError(f"not an awakeable id (its body is not base64url): {awakeable_id!r}") from None
    if len(raw) <= _INDEX_BYTES:
        raise ValueError(f"not an awakeable id (too short): {awakeable_id!r}")
    return raw[:-_INDEX_BYTES], int.from_bytes(raw[-_INDEX_BYTES:], "big")


def awakeable_signal(
    awakeable_id: str, value: typing.Optional[bytes], failure: typing.Optional[Failure]
) -> typing.Optional[Signal]:
    """The signal that completes an SDK endpoint's awakeable (None for restate-pg's own ids):
    the endpoint's invocation is named by `StartMessage.id`, the invocation id's ASCII bytes."""
    try:
        start_id, index = parse_sdk_awakeable_id(awakeable_id)
    except ValueError:
        return None
    invocation_id = start_id.decode("ascii", errors="replace")
    if not is_invocation_id(invocation_id):
        return None
    return Signal(invocation_id, index=index, value=value, failure=failure)
