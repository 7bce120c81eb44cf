"""A `JournalValueCodec` applied as restate-sdk applies it: PostgreSQL holds the encoded bytes,
handlers see decoded values, replay decodes what was journaled; and the harness's
`journal_value_codec` (its client's) and `disable_retries`."""

from __future__ import annotations

import secrets
import typing

import httpx
import psycopg
import pytest
from psycopg import sql

import restate_pg as restate
from restate_pg import TerminalError
from restate_pg.store.migrate import upgrade
from restate_pg.testing import HarnessEnvironment, create_test_harness
from tests.apps import sealed


#: The journal entries that hold a value the codec encodes (a call's parameter is its callee's input).
VALUED = {"Command: Input", "Command: Run", "Command: SetState", "Notification: Call", "Notification: Signal",
          "Command: GetEagerState", "Command: Output"}


@pytest.fixture(scope="module")
def schema(database_url: str) -> typing.Iterator[str]:
    """A schema of this module's own, so that its harnesses can live for the whole module."""
    name = f"codec_{secrets.token_hex(4)}"
    upgrade(database_url, name)
    yield name
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))


@pytest.fixture(scope="module")
async def env(database_url: str, schema: str) -> typing.AsyncIterator[HarnessEnvironment]:
    """Every await suspends (always_replay), so each step after the first runs on a replay."""
    async with create_test_harness(sealed.app, always_replay=True, journal_value_codec=sealed.Sealing(),
                                   database_url=database_url, schema=schema) as harness:
        yield harness


async def test_the_database_holds_sealed_bytes_and_the_handler_plain_values(env: HarnessEnvironment) -> None:
    key = secrets.token_hex(4)
    minted_before = len(sealed.MINTED)
    stored: typing.Dict[str, typing.Dict[str, bytes]] = {}
    result = await env.client.object_call(sealed.keep, key, sealed.Secret(text="opal"))
    assert result == {"minted": "token-opal", "echoed": "echo opal", "word": "open", "kept": "opal"}
    assert sealed.MINTED[minted_before:] == ["opal"]  # replayed after each suspension, run once
    assert len(sealed.BUILT) == 1  # the provider built the codec once

    for target in (f"SealedLedger/{key}/keep", "SealedHelper/echo", "SealedHelper/unlock"):
        for invocation in await env.query("SELECT id FROM sys_invocation WHERE target = %(t)s", {"t": target}):
            journal = await env.query("SELECT entry_type, raw FROM sys_journal WHERE id = %(id)s ORDER BY index",
                                      {"id": invocation["id"]})
            stored[target] = {e["entry_type"]: bytes(e["raw"]) for e in journal if e["entry_type"] in VALUED}
    seal = sealed.Sealing().encode
    assert stored[f"SealedLedger/{key}/keep"] == {
        "Command: Input": seal(b'{"text":"opal"}'),
        "Command: Run": seal(b'"token-opal"'),
        "Command: SetState": seal(b'{"text":"opal"}'),
        "Notification: Call": seal(b'"echo opal"'),
        "Notification: Signal": seal(b'{"word":"open"}'),  # the awakeable's completion
        "Command: GetEagerState": seal(b'{"text":"opal"}'),
        "Command: Output": seal(b'{"minted":"token-opal","echoed":"echo opal","word":"open","kept":"opal"}'),
    }
    assert stored["SealedHelper/echo"]["Command: Input"] == seal(b'"opal"')  # the call's parameter
    assert stored["SealedHelper/unlock"]["Command: Input"].startswith(sealed.Sealing.MARK)  # the send's
    [state] = await env.query("SELECT value FROM state WHERE service_name = 'SealedLedger' AND service_key = %(k)s", {"k": key})
    assert bytes(state["value"]) == sealed.Sealing().encode(b'{"text":"opal"}')


async def test_a_send_attached_and_a_body_the_codec_did_not_seal(env: HarnessEnvironment) -> None:
    handle = await env.client.object_send(sealed.keep, secrets.token_hex(4), sealed.Secret(text="jade"))
    assert (await env.client.attach_invocation(handle.invocation_id))["minted"] == "token-jade"

    async with httpx.AsyncClient(base_url=env.ingress_url) as plain:  # no codec: plain JSON
        response = await plain.post(f"/SealedLedger/{secrets.token_hex(4)}/keep", json={"text": "jet"})
    assert response.status_code == 400
    assert response.json()["message"] == "Failed to decode input using journal value codec"


async def test_disable_retries_fails_at_the_first_failure_unless_the_handler_says_otherwise(
        database_url: str, schema: str) -> None:
    async with create_test_harness(sealed.failing_app, disable_retries=True, database_url=database_url,
                                   schema=schema) as harness:
        with pytest.raises(TerminalError, match="no luck") as raised:
            await harness.client.service_call(sealed.always)
        assert raised.value.status_code == 500
        assert sealed.ATTEMPTS["always"] == 1
        with pytest.raises(TerminalError, match="no luck, thrice"):
            await harness.client.service_call(sealed.patient)
        assert sealed.ATTEMPTS["patient"] == 3


async def test_the_codec_must_be_one() -> None:
    with pytest.raises(TypeError, match="JournalValueCodec"):
        restate.app([], journal_value_codec="secret")
    with pytest.raises(TypeError, match="JournalValueCodec"):
        async with create_test_harness(sealed.app, journal_value_codec=sealed.provide):  # the client's: no provider
            pass  # pragma: no cover
