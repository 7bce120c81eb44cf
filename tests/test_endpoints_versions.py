"""Service protocol versions 5, 6 and 7, each negotiated with real SDK endpoints (their manifests
offer 5 to 7; restate-pg is pinned lower with RESTATE_PG_PROTOCOL_VERSION_MAX), and request
identity: endpoints that check signatures accept restate-pg's and refuse everyone else's."""

from __future__ import annotations

import asyncio
import typing
import uuid
from pathlib import Path

import pytest

from restate_pg.api.app import App
from restate_pg.endpoints.settings import IDENTITY_KEY_ENV, PROTOCOL_VERSION_MAX_ENV, request_signer
from restate_pg.protocol.identity import RequestSigner
from tests.support.polling import eventually
from tests.support.server import Served, serve

pytestmark = pytest.mark.slow


async def exercise(server: Served) -> None:
    """State, a journaled step, a timer, an awakeable: what each version encodes differently
    (suspensions, run acknowledgements, the random seed)."""
    k = uuid.uuid4().hex[:8]
    assert (await server.client.post(f"/State/{k}/add", json=2)).json() == 2
    assert (await server.client.post("/Steps/steps", json={"key": k, "n": 3})).json() == 3
    assert (await server.client.post("/Steps/sleep", json=100)).json() == "slept"
    random = (await server.client.post("/Steps/random", json=k)).json()
    assert random["sameOnReplay"] is True and random["attempt"] == 2


async def register(server: Served, url: str) -> typing.Any:
    response = await server.client.post("/admin/deployments", json={"uri": url})

    async def served() -> bool:
        await server.engine.load_overrides()
        return server.engine.service("Steps") is not None

    if response.status_code == 201:
        await eventually(served, what="the services to be served")
    return response


@pytest.mark.parametrize("version", [5, 6, 7])
@pytest.mark.parametrize("sdk", ["typescript", "python"])
async def test_each_protocol_version_is_negotiated_and_runs(version: int, sdk: str, clean_db: str,
                                                            start_endpoint: typing.Any,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PROTOCOL_VERSION_MAX_ENV, str(version))
    endpoint = start_endpoint(sdk, "h2")
    async with serve(App(), clean_db, admin=True, inactivity_timeout=0.5) as server:
        response = await register(server, endpoint.url)
        assert response.status_code == 201, response.text
        ((deployment, _),) = server.engine.remote.deployments
        assert deployment.version == version
        await exercise(server)


async def test_endpoints_checking_identity_accept_only_signed_requests(clean_db: str, start_endpoint: typing.Any,
                                                                     tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    signer = RequestSigner.generate()
    endpoint = start_endpoint("typescript", "h2", env={"RESTATE_IDENTITY_KEYS": signer.public_key_string()})
    async with serve(App(), clean_db, admin=True) as server:
        refused = await register(server, endpoint.url)  # unsigned: the endpoint answers 401
        assert refused.status_code == 400 and "401" in refused.json()["message"]

        key = tmp_path / "identity.pem"
        key.write_bytes(signer.private_pem())
        monkeypatch.setenv(IDENTITY_KEY_ENV, str(key))
        assert request_signer() is not None
        response = await register(server, endpoint.url)
        assert response.status_code == 201, response.text
        await exercise(server)


async def test_v6_sleepers_give_their_slots_back_as_v7_ones_do(clean_db: str, start_endpoint: typing.Any,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """V6 sends no AwaitingOn: a Sleep command is the sign that the handler waits for the server.
    Two slots, six sleepers: all six sleep at once, rather than two at a time."""
    monkeypatch.setenv(PROTOCOL_VERSION_MAX_ENV, "6")
    endpoint = start_endpoint("typescript", "h2")
    async with serve(App(), clean_db, admin=True, concurrency=2, inactivity_timeout=30) as server:
        assert (await register(server, endpoint.url)).status_code == 201
        ids = [(await server.client.post("/Steps/sleep/send", json=3000)).json()["invocationId"] for _ in range(6)]
        # all six wait in memory for their timers (3 s), none holds a slot or a queue place
        engine = server.engine
        await eventually(lambda: (engine.slots.waiting, engine.slots.active, len(engine.run_queue)), (6, 0, 0),
                         what="the six sleepers waiting at once")
        results = await asyncio.wait_for(asyncio.gather(*(server.engine.results.wait(i) for i in ids)), 60)
    assert all(r.output == b'"slept"' for r in results)
